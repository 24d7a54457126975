"""The console's own turns ("test now" and the API tester), for either pool.

They run through the runner like a normal buffered request, on a lease pinned to one account when
asked (`lease(only=...)`, which waits in the pool's queue like anybody, so one stream per account
holds), and are reported to the request observer as surface "tester".
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Collection
from contextlib import AbstractAsyncContextManager, aclosing

from ...chat.assemble import OutFinish
from ...chat.errors import TurnFailed
from ...chat.runner import AccountSource, Lease, LeaseSource, TurnRunner, TurnTrace
from ...chat.turn import Message, ModelRegistry, Turn
from ...pool.errors import EditRefusal, PoolEditRefused, PoolExhausted, PoolUnavailable
from ..dialect import OPENAI
from ..errors import from_failure
from ..observe import RequestObserver, report
from .backend import AdminError, AdminErrorKind, ProbeResult, TesterReply

TEST_MODEL = "deepseek-chat"
TESTER = "tester"  # the `surface` label of the console's turns
TEST_PROMPT = "Reply with the single word: ok"
_REFUSAL = {EditRefusal.NOT_FOUND: AdminErrorKind.NOT_FOUND, EditRefusal.EXISTS: AdminErrorKind.CONFLICT,
            EditRefusal.IN_USE: AdminErrorKind.CONFLICT}


def refused(exc: PoolEditRefused) -> AdminError:
    """A pool edit refusal as the admin API's error."""
    return AdminError(_REFUSAL[exc.kind], exc.message)


class PinnedLeases:
    """A `LeaseSource` that leases one account only (it waits in the pool's queue for it)."""

    def __init__(self, pool: AccountSource, account_id: str) -> None:
        self._pool = pool
        self._account_id = account_id

    def lease(self, *, exclude: Collection[str] = ()) -> AbstractAsyncContextManager[Lease]:
        return self._pool.lease(exclude=exclude, only=self._account_id)


class ConsoleTurns:
    """Runs the console's turns on a pool and reports them like requests."""

    def __init__(self, runner: TurnRunner, registry: ModelRegistry, observer: RequestObserver | None) -> None:
        self.runner = runner
        self.registry = registry
        self.observer = observer

    async def test_account(self, pool: AccountSource, account_id: str) -> ProbeResult:
        """Log in if needed and answer a one-word turn on this account."""
        reply = await self.run(pool, TEST_MODEL, TEST_PROMPT, account_id)
        if reply.ok:
            return ProbeResult(True, f"logged in and answered in {reply.duration:.2f}s", duration=reply.duration)
        kind, _, message = (reply.error or "error: failed").partition(": ")
        return ProbeResult(False, message, kind=kind, duration=reply.duration)

    async def run(self, pool: AccountSource, model: str, prompt: str, account_id: str | None) -> TesterReply:
        """One buffered turn, as a normal non-stream request would run it; reported as surface "tester"."""
        spec = self.registry.resolve(model)
        if spec is None:
            raise AdminError(AdminErrorKind.INVALID, f"unknown model {model!r}")
        request_id = f"req_console_{secrets.token_hex(8)}"
        turn = Turn(request_id=request_id, model=spec, model_name=model, messages=(Message("user", prompt),))
        leases: LeaseSource = PinnedLeases(pool, account_id) if account_id is not None else pool
        trace = TurnTrace()
        started = time.perf_counter()
        finish: OutFinish | None = None
        error: str | None = None
        status = 200
        try:
            async with aclosing(self.runner.run(turn, leases, trace, buffered=True)) as events:
                async for event in events:
                    if isinstance(event, OutFinish):
                        finish = event
        except TurnFailed as failed:  # the status a client would have got, for the tail and the metrics
            error = f"{failed.error.kind.value}: {failed.error.message}"
            status = _status_of(failed, trace.attempts)
        except (PoolExhausted, PoolUnavailable) as refusal:
            reason = refusal.reason.value if isinstance(refusal, PoolExhausted) else refusal.kind
            error, status = f"pool_{reason}: {refusal.message}", _status_of(refusal, trace.attempts)
        except PoolEditRefused as exc:
            raise refused(exc) from None
        duration = time.perf_counter() - started
        usage = finish.usage if finish is not None else None
        tokens_in = usage.prompt_tokens if usage is not None else None
        tokens_out = usage.completion_tokens if usage is not None else None
        report(self.observer, TESTER, turn, trace, started, status)  # as the endpoint reports a request
        if finish is None:
            return TesterReply(False, "", account_id=trace.account_id, model=model, duration=duration,
                               error=error or "error: the turn ended without an answer")
        return TesterReply(True, finish.content_text, account_id=trace.account_id, model=model, duration=duration,
                           ttft=duration, tokens_in=tokens_in, tokens_out=tokens_out)


def _status_of(failure: BaseException, attempts: int) -> int:
    answer = from_failure(failure, attempts=max(1, attempts))
    return OPENAI.status(answer) if answer is not None else 499


__all__ = ["TEST_MODEL", "TEST_PROMPT", "ConsoleTurns", "PinnedLeases", "refused"]
