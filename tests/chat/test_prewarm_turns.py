"""The turn prewarmer (`pool.prewarm`): one prepared session + solved PoW per idle account, used once.

Unit tests drive `TurnPrewarmer.refresh()` with a fake pool, client and clock; the end-to-end tests
run the gateway against the simulator and check, on the simulator's side, that a request used the
prepared session and PoW (no challenge minted while it ran) and that nothing runs when it is off.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from deepseek2api.chat.prewarm import TurnPrewarmer
from deepseek2api.deepseek.client import PATH_COMPLETION as COMPLETION_PATH
from deepseek2api.deepseek.errors import ErrorKind, UpstreamFailure
from deepseek2api.deepseek.events import UpstreamError
from deepseek2api.deepseek.pow import PowChallenge, decode_pow_response, encode_pow_response, hash_hex, solve_async
from deepseek2api.pool.proxies import ProxyPool
from deepseek2api.settings import AccountSettings
from gateway_support import running_stack

# ------------------------------------------------------------------------------------------- fakes


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def account(name: str, **extra: Any) -> AccountSettings:
    return AccountSettings(email=f"{name}@example.com", name=name, password="pw", **extra)


class FakePool:
    def __init__(self, *accounts: AccountSettings) -> None:
        self.accounts = list(accounts)
        self.tokens = {a.id: f"token-{a.id}-1" for a in accounts}
        self.busy: set[str] = set()
        self.logins = 0

    def idle_accounts(self) -> list[tuple[AccountSettings, str]]:
        return [(a, self.tokens[a.id]) for a in self.accounts if a.id not in self.busy]

    async def prewarm(self) -> int:
        self.logins += 1
        return 0


class FakeClient:
    """Counts upstream calls; challenges are real (tiny difficulty) so the real solver runs."""

    def __init__(self, expire_after_ms: int = 300_000) -> None:
        self.expire_after_ms = expire_after_ms
        self.sessions: list[tuple[str, str | None]] = []
        self.challenges: list[tuple[str, str, str | None]] = []
        self.issued: list[PowChallenge] = []
        self.deleted: list[tuple[str, str]] = []
        self.fail_challenge: UpstreamError | None = None

    async def create_session(self, token: str, *, proxy: str | None = None) -> str:
        self.sessions.append((token, proxy))
        return f"session-{len(self.sessions)}"

    async def create_pow_challenge(self, token: str, target_path: str, *, proxy: str | None = None) -> PowChallenge:
        self.challenges.append((token, target_path, proxy))
        if self.fail_challenge is not None:
            raise UpstreamFailure(self.fail_challenge)
        salt, expire_at, answer = "a1b2c3d4e5f6a7b8c9d0", int(time.time() * 1000) + self.expire_after_ms, \
            random.randrange(50)
        digest = hash_hex(f"{salt}_{expire_at}_{answer}".encode())
        challenge = PowChallenge("DeepSeekHashV1", digest, salt, "0" * 64, 50, expire_at, target_path,
                                 self.expire_after_ms)
        self.issued.append(challenge)
        return challenge

    async def solved_pow(self, token: str, target_path: str, *,
                         proxy: str | None = None) -> tuple[str, PowChallenge]:
        """As DeepSeekClient's: the challenge, solved by the real solver, and its header."""
        challenge = await self.create_pow_challenge(token, target_path, proxy=proxy)
        return encode_pow_response(challenge, await solve_async(challenge), target_path), challenge

    async def delete_session(self, token: str, *, session_id: str, proxy: str | None = None) -> None:
        self.deleted.append((token, session_id))


def prewarmer(pool: FakePool, client: FakeClient, clock: Clock | None = None,
              proxies: ProxyPool | None = None) -> TurnPrewarmer:
    return TurnPrewarmer(pool, client, proxies or ProxyPool([], enabled=False),  # type: ignore[arg-type]
                         clock=clock or Clock())


async def settle() -> None:
    """Let background deletions run."""
    for _ in range(5):
        await asyncio.sleep(0)


# ------------------------------------------------------------------------------------------- unit


async def test_each_idle_account_gets_one_prepared_turn() -> None:
    pool, client = FakePool(account("a"), account("b")), FakeClient()
    warm = prewarmer(pool, client)
    assert await warm.refresh() == 2
    assert await warm.refresh() == 0  # nothing due: ready and far from expiry
    assert warm.ready == 2
    assert [t for t, _ in client.sessions] == ["token-a-1", "token-b-1"]
    assert [(t, path) for t, path, _ in client.challenges] == [("token-a-1", COMPLETION_PATH),
                                                               ("token-b-1", COMPLETION_PATH)]


async def test_a_prepared_turn_is_handed_out_once_with_a_valid_completion_pow() -> None:
    pool, client = FakePool(account("a")), FakeClient()
    warm = prewarmer(pool, client)
    await warm.refresh()
    taken = warm.take("a", "token-a-1", None)
    assert taken is not None
    session_id, header = taken
    assert session_id == "session-1"
    payload = decode_pow_response(header)
    issued = client.issued[-1]
    assert payload["target_path"] == COMPLETION_PATH and payload["challenge"] == issued.challenge
    assert hash_hex(f"{issued.salt}_{issued.expire_at}_{payload['answer']}".encode()) == issued.challenge
    assert warm.take("a", "token-a-1", None) is None  # single use
    assert warm.taken == 1 and warm.ready == 0


async def test_a_new_token_invalidates_the_prepared_turn() -> None:
    pool, client = FakePool(account("a")), FakeClient()
    warm = prewarmer(pool, client)
    await warm.refresh()
    # the runner re-logged the account in: its token changed; the old session is not handed out
    assert warm.take("a", "token-a-2", None) is None
    await settle()
    assert client.deleted == [("token-a-1", "session-1")]
    assert warm.discarded == 1


async def test_refresh_replaces_a_turn_made_with_a_replaced_token() -> None:
    pool, client = FakePool(account("a")), FakeClient()
    warm = prewarmer(pool, client)
    await warm.refresh()
    pool.tokens["a"] = "token-a-2"  # re-login while the account was idle
    assert await warm.refresh() == 1
    await settle()
    assert client.deleted == [("token-a-1", "session-1")]
    assert client.sessions[-1] == ("token-a-2", None)
    taken = warm.take("a", "token-a-2", None)
    assert taken is not None and taken[0] == "session-2"


async def test_the_pow_is_renewed_before_it_expires_and_the_session_kept() -> None:
    pool, client, clock = FakePool(account("a")), FakeClient(expire_after_ms=300_000), Clock()
    warm = prewarmer(pool, client, clock)
    await warm.refresh()
    clock.now += 230  # 70 s left: more than the refresh margin (60 s)
    assert await warm.refresh() == 0
    clock.now += 20  # 50 s left: renew
    assert await warm.refresh() == 1
    assert len(client.challenges) == 2 and len(client.sessions) == 1  # new PoW, same session
    taken = warm.take("a", "token-a-1", None)
    assert taken is not None and taken[0] == "session-1"
    assert client.deleted == []


async def test_an_almost_expired_pow_is_not_handed_out() -> None:
    pool, client, clock = FakePool(account("a")), FakeClient(expire_after_ms=300_000), Clock()
    warm = prewarmer(pool, client, clock)
    await warm.refresh()
    clock.now += 295  # 5 s left: less than the use margin (10 s)
    assert warm.take("a", "token-a-1", None) is None
    await settle()
    assert client.deleted == [("token-a-1", "session-1")]


async def test_busy_accounts_are_not_prepared() -> None:
    pool, client = FakePool(account("a"), account("b")), FakeClient()
    pool.busy = {"a"}
    warm = prewarmer(pool, client)
    assert await warm.refresh() == 1
    assert warm.take("a", "token-a-1", None) is None
    assert warm.take("b", "token-b-1", None) is not None


async def test_a_turn_made_through_one_exit_is_not_used_through_another() -> None:
    pool, client = FakePool(account("a", proxy="http://exit-a:8080")), FakeClient()
    warm = prewarmer(pool, client)
    await warm.refresh()
    assert client.sessions == [("token-a-1", "http://exit-a:8080")]
    assert warm.take("a", "token-a-1", None) is None
    await warm.refresh()
    assert warm.take("a", "token-a-1", "http://exit-a:8080") is not None


async def test_with_a_least_used_proxy_pool_only_accounts_with_their_own_proxy_are_prepared() -> None:
    pool = FakePool(account("a"), account("b", proxy="http://own:1"))
    client = FakeClient()
    proxies = ProxyPool(["http://p1:1", "http://p2:1"], enabled=True, strategy="least_used")
    warm = prewarmer(pool, client, proxies=proxies)
    assert await warm.refresh() == 1
    assert client.sessions == [("token-b-1", "http://own:1")]


async def test_a_failed_preparation_is_retried_later_and_leaves_nothing_behind() -> None:
    pool, client, clock = FakePool(account("a")), FakeClient(), Clock()
    client.fail_challenge = UpstreamError(ErrorKind.RATE_LIMITED, "slow down")
    warm = prewarmer(pool, client, clock)
    assert await warm.refresh() == 0
    await settle()
    assert warm.ready == 0
    assert client.deleted == [("token-a-1", "session-1")]  # its fresh session is not left behind
    assert await warm.refresh() == 0 and len(client.challenges) == 1  # backing off
    client.fail_challenge = None
    clock.now += 31
    assert await warm.refresh() == 1


async def test_stop_deletes_sessions_nobody_used() -> None:
    pool, client = FakePool(account("a"), account("b")), FakeClient()
    warm = prewarmer(pool, client)
    await warm.refresh()
    assert warm.take("a", "token-a-1", None) is not None
    await warm.stop()
    assert client.deleted == [("token-b-1", "session-2")]
    assert warm.ready == 0


# ------------------------------------------------------------------------------------------- end to end


def _wait_ready(stack: Any, count: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while stack.gateway.prewarmer.ready < count:
        assert time.monotonic() < deadline, f"prewarmer not ready: {stack.gateway.prewarmer.ready}/{count}"
        time.sleep(0.02)


def test_a_request_uses_the_prepared_session_and_pow() -> None:
    with running_stack(accounts=1, pool={"prewarm": True}, sim={"tokens_per_second": 40}) as stack:
        _wait_ready(stack, 1)
        before = stack.sim_stats()
        assert before["pow_challenges"] == 1 and before["sessions_created"] == 1
        client = stack.openai()
        stream = client.chat.completions.create(model="deepseek-chat", stream=True,
                                                messages=[{"role": "user", "content": "hello [sim:words=40]"}])
        text = ""
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
                if len(text) > 5 and not hasattr(stream, "_checked"):
                    # mid-stream, the account is leased: the prewarmer cannot have refilled it yet
                    during = stack.sim_stats()
                    assert during["pow_challenges"] == 1, during
                    assert during["sessions_created"] == 1, during
                    assert during["completions"] == before["completions"] + 1
                    stream._checked = True  # type: ignore[attr-defined]
        assert getattr(stream, "_checked", False)
        assert "alpha" in text or "simulator" in text
        assert stack.gateway.prewarmer.taken == 1
        assert stack.sim_stats()["pow_failures"] == 0


def test_prepared_turns_are_used_once() -> None:
    with running_stack(accounts=1, pool={"prewarm": True}) as stack:
        _wait_ready(stack, 1)
        client = stack.openai()
        for _ in range(3):
            reply = client.chat.completions.create(model="deepseek-chat",
                                                   messages=[{"role": "user", "content": "again"}])
            assert reply.choices[0].message.content
        stats = stack.sim_stats()
        assert stats["pow_failures"] == 0  # a reused PoW would be refused upstream
        assert stats["completions"] == 3
        assert stack.gateway.prewarmer.taken >= 1


def test_without_prewarm_nothing_runs_while_idle() -> None:
    with running_stack(accounts=2) as stack:
        assert stack.gateway.prewarmer is None
        time.sleep(0.3)
        stats = stack.sim_stats()
        assert stats["logins"] == 0 and stats["pow_challenges"] == 0 and stats["sessions_created"] == 0
