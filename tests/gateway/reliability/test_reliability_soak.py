"""Fault soak: hundreds of concurrent requests while the simulator misbehaves at random (issue #6 item 1).

Every answer must be either the exact reply or a well-formed OpenAI error; nothing may leak (leases,
in-flight turns) and no account may ever carry two streams upstream at once. `bench/soak.py` runs
the same scenario at 10,000 requests.
"""

from __future__ import annotations

import pytest

from reliability_support import SoakOptions, run_soak, soak_stack

pytestmark = pytest.mark.slow


async def test_fault_soak_every_answer_is_right_or_a_clean_error() -> None:
    options = SoakOptions(requests=400, concurrency=20, accounts=5)
    with soak_stack(options, check=False) as stack:
        report = await run_soak(stack, options)
        print("\n" + report.table())
        assert not report.bad, [f"{o.detail}" for o in report.bad[:10]]
        classes = report.by_class()
        assert classes["ok"] > options.requests // 2, classes  # faults are the exception, not the rule
        assert classes["disconnected"] > 0, classes
        assert report.violations == 0
        assert report.leases_out == 0 and report.inflight == 0
        # Random token expiry costs no account for good (the logins worked, so the passwords are fine).
        assert not {"bad_credentials", "banned"} & set(report.accounts), report.accounts
        # The faults really happened, and the gateway failed over instead of giving up at once.
        faults = report.sim["faults"]
        for name in ("token_expired", "pow_rejected", "rate_limit", "busy", "waf", "stall", "cut"):
            assert faults.get(name, 0) > 0, (name, faults)
        assert report.failovers > 0 and report.multi_attempt_requests > 0
        assert report.sim["completions"] > classes["ok"]
        stack.assert_invariants()
