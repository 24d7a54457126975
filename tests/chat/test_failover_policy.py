"""Failover never spreads a ban: after a mute or ban answered to the prompt, the same
turn is not sent to another account; failures that belong to the account alone still fail over."""

from __future__ import annotations

import httpx
import openai
import pytest

from deepseek2api.deepseek.errors import ErrorKind
from deepseek2api.simulator.replies import reply_for
from gateway_support import running_stack


def states(stack) -> dict[str, str]:
    return {a["id"]: a["state"] for a in stack.gateway.pool.status()}


@pytest.mark.parametrize(("fault", "state", "code"), [("ban", "banned", "upstream_account_banned"),
                                                       ("mute", "muted", "upstream_account_muted")])
def test_a_prompt_that_draws_a_ban_or_mute_costs_one_account_not_the_pool(fault: str, state: str, code: str) -> None:
    with running_stack(accounts=3) as stack:
        with pytest.raises(openai.InternalServerError) as failed:
            stack.openai().chat.completions.create(
                model="deepseek-chat", messages=[{"role": "user", "content": f"offending [sim:fault={fault}]"}])
        error = failed.value
        assert error.status_code == 503 and error.code == code
        assert "not sent on to another account" in error.message
        assert error.response.headers.get("x-should-retry") == "false"
        stats = stack.sim_stats()
        assert stats["requests"]["completion"] == 1 and stats["faults"] == {fault: 1}  # one account saw the prompt
        marked = states(stack)
        assert sorted(marked.values()) == sorted([state, "ready", "ready"]), marked
        # The pool still serves from the accounts the prompt never reached.
        reply = stack.openai().chat.completions.create(model="deepseek-chat",
                                                       messages=[{"role": "user", "content": "next"}])
        assert reply.choices[0].message.content == reply_for("next", thinking=False, search=False).content


def test_a_ban_found_at_login_still_fails_over_because_the_prompt_was_never_sent() -> None:
    with running_stack(accounts=2) as stack:
        httpx.post(f"{stack.simulator.base_url}/_sim/faults", timeout=10,
                   json={"account": "user1@sim.test", "fault": "ban", "on": "login"}).raise_for_status()
        for i in range(4):  # every request is answered, including the one whose first account was banned
            reply = stack.openai().chat.completions.create(model="deepseek-chat",
                                                           messages=[{"role": "user", "content": f"hello {i}"}])
            assert reply.choices[0].message.content == reply_for(f"hello {i}", thinking=False, search=False).content
        assert states(stack) == {"user1@sim.test": "banned", "user2@sim.test": "ready"}
        assert stack.sim_stats()["requests"]["completion"] == 4


@pytest.mark.parametrize("kind", [ErrorKind.TOKEN_INVALID, ErrorKind.RATE_LIMITED, ErrorKind.BUSY,
                                  ErrorKind.NETWORK, ErrorKind.WAF_BLOCKED, ErrorKind.POW_REJECTED,
                                  ErrorKind.STREAM_CUT])
def test_failures_of_the_account_alone_still_fail_over(kind: ErrorKind) -> None:
    assert kind.try_another_account and kind.try_another_account_before_prompt


@pytest.mark.parametrize("kind", [ErrorKind.ACCOUNT_MUTED, ErrorKind.ACCOUNT_BANNED])
def test_mute_and_ban_fail_over_only_before_the_prompt_went_out(kind: ErrorKind) -> None:
    assert not kind.try_another_account
    assert kind.try_another_account_before_prompt
    assert kind.blames_account
