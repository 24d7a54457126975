"""The one place every turn of a named key passes: admission before the lease, accounting at its end.

`KeyGate.leases(caller, source)` is what the composition root's `leases_for` hands every surface; the
runner (chat/runner.py) enters its `admit(turn, trace)` before it asks for the first lease and leaves it
when the turn is over, whatever the surface (OpenAI chat, Anthropic Messages, Responses, and any surface
built on the runner later). So:

- before a lease: the key's rules (keys/limiter.py) — a refusal is the surface's 403/401/429 with
  rate-limit headers (api/keys/refusal.py), sent while nothing else was (a stream answers a real HTTP
  error: chat/admission.py);
- the lease: from the pool's queue with the key as owner, so keys take turns (pool/fairness.py);
- at the end: one `record` into the usage ledger (keys/usage.py) and the TTFT into the console's
  timeline (api/admin/timeline.py). Refused requests use nothing and are not counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from types import TracebackType

from ...chat.runner import AccountSource, Lease, TurnTrace
from ...chat.turn import Turn
from ...keys.directory import KeyDirectory
from ...keys.limiter import KeyLimiter
from ...keys.rules import KeyRules
from ...keys.usage import TurnCounts, UsageLedger
from ...pool.accounts import AccountPool
from ..admin.timeline import Timeline
from ..auth import Caller
from .refusal import refused


class KeyGate:
    """The key checks and the accounting, shared by every surface (built once by server.py)."""

    def __init__(self, directory: KeyDirectory, ledger: UsageLedger, timeline: Timeline | None = None) -> None:
        self.directory = directory
        self.ledger = ledger
        self.limiter = KeyLimiter(ledger.tokens_today)
        self.timeline = timeline

    def leases(self, caller: Caller, source: AccountSource) -> KeyedLeases:
        return KeyedLeases(self, caller.key_name, source)


class KeyedLeases:
    """A caller's view of the pool: leases queued under the key's name, and the turn's admission."""

    __slots__ = ("_fair", "_gate", "_source", "key_name")

    def __init__(self, gate: KeyGate, key_name: str, source: AccountSource) -> None:
        self._gate = gate
        self.key_name = key_name
        self._source = source
        self._fair = source if isinstance(source, AccountPool) else None

    def lease(self, *, exclude: Collection[str] = (), prefer: str | None = None,
              only: str | None = None) -> AbstractAsyncContextManager[Lease]:
        if self._fair is not None:
            return self._fair.lease(exclude=exclude, prefer=prefer, only=only, owner=self.key_name)
        return self._source.lease(exclude=exclude, prefer=prefer, only=only)

    def admit(self, turn: Turn, trace: TurnTrace) -> Admission:
        return Admission(self._gate, self.key_name, turn, trace)


class Admission:
    """`async with`: raises the refusal on enter; on exit gives the stream slot back and counts the turn."""

    __slots__ = ("_gate", "_key", "_rules", "_started", "_trace", "_turn")

    def __init__(self, gate: KeyGate, key: str, turn: Turn, trace: TurnTrace) -> None:
        self._gate, self._key, self._turn, self._trace = gate, key, turn, trace
        self._rules: KeyRules | None = None
        self._started = 0.0

    async def __aenter__(self) -> None:
        gate = self._gate
        rules = gate.directory.get(self._key)
        if rules is not None:
            model = self._turn.model_name
            if not rules.allows_model(model) and rules.allows_model(self._turn.model.id):
                model = self._turn.model.id  # an alias of an allowed model is allowed
            refusal = gate.limiter.admit(rules, model)
            if refusal is not None:
                raise refused(refusal, rules, gate.limiter, gate.ledger.tokens_today(rules.name))
            self._rules = rules
        self._started = time.perf_counter()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        gate, trace = self._gate, self._trace
        if self._rules is not None:
            gate.limiter.release(self._rules.name)
        cancelled = exc_type is not None and issubclass(exc_type, (GeneratorExit, asyncio.CancelledError))
        usage = trace.usage
        gate.ledger.record(self._key, self._turn.model_name, TurnCounts(
            prompt_tokens=usage.prompt_tokens if usage is not None else 0,
            completion_tokens=usage.completion_tokens if usage is not None else 0,
            reasoning_tokens=usage.reasoning_tokens if usage is not None else 0,
            error=exc_type is not None and not cancelled,
            seconds=time.perf_counter() - self._started))
        if gate.timeline is not None and trace.first_output is not None:
            gate.timeline.ttft(trace.first_output - self._started)


__all__ = ["Admission", "KeyGate", "KeyedLeases"]
