"""DeepSeek's client-version gate, as the gateway met it: one state for the whole process.

DeepSeek refuses a client it considers too old with HTTP 200 `{"code":40005,"msg":"CLIENT_VERSION_TOO_LOW",
"data":null}` on any call (login, session, PoW, completion, upload). That is the gateway's identity at
fault, not an account, so it is tracked here once: how often (the `/metrics` counter), when last, with
which identity (the console's banner), and logged at most once a minute instead of once per request.
A success after the refusal, or a change of identity, takes the banner down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("deepseek2api.upstream")

LOG_INTERVAL = 60.0  # seconds between two log lines about the gate
SETTING_HINT = ("set `upstream.client_version` (or another `upstream.persona`) in the config, "
                "or change the client identity in the console (Upstream panel)")


@dataclass(frozen=True, slots=True)
class GateState:
    """What the console's banner shows."""

    refused: bool  # the last word from DeepSeek on our identity was a refusal
    count: int  # refusals since start
    last_at: float | None  # unix seconds of the last refusal
    identity: str  # "persona android, x-client-version 1.6.11" as sent then
    message: str  # DeepSeek's words (code and msg)


class VersionGate:
    """Counts refusals, remembers the last one, rate-limits the log line."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.count = 0
        self._refused = False
        self._last_at: float | None = None
        self._identity = ""
        self._message = ""
        self._logged_at: float | None = None

    def refused(self, identity: str, message: str) -> None:
        """DeepSeek refused our client version (any call)."""
        now = self._clock()
        self.count += 1
        self._refused = True
        self._last_at, self._identity, self._message = now, identity, message
        if self._logged_at is None or now - self._logged_at >= LOG_INTERVAL:
            self._logged_at = now
            log.error("DeepSeek refuses the gateway's client version (%s; %s): every request fails until you %s "
                      "(docs/deepseek-changes.md). Repeats are logged at most once a minute.",
                      identity, message, SETTING_HINT)

    def passed(self) -> None:
        """A call went through: whatever the gate said earlier no longer holds."""
        if self._refused:
            self._refused = False
            log.info("DeepSeek accepts the client version again")

    def reset(self) -> None:
        """The identity changed: the last refusal was about another one."""
        self._refused = False
        self._logged_at = None

    def state(self) -> GateState:
        return GateState(self._refused, self.count, self._last_at, self._identity, self._message)
