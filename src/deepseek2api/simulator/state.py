"""Everything the simulated server remembers: tokens, sessions, messages, PoW challenges, streams, counters.

All of it lives on the server's event loop and is changed only by plain (non-async) methods, so one
request handler never sees another half-way through an update.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .config import FAULT_NAMES, SimulatorConfig, SimUser
from .files import FileStore
from .pow_check import PowVerifier

MAX_SESSIONS = 50_000

# Endpoint names (per-endpoint counters and the `on` field of queued faults).
ENDPOINTS = (
    "login", "current", "create_session", "delete_session", "delete_all", "fetch_page",
    "history_messages", "create_pow_challenge", "completion", "continue", "stop_stream",
    "upload_file", "fetch_files", "fork_file_task",
)


@dataclass
class TokenInfo:
    account: str
    issued_at: float


@dataclass
class SimMessage:
    """One stored turn. `turn` (assistant only) is the generation plan, kept for chat/continue."""

    message_id: int
    parent_id: int | None
    role: str  # "USER" | "ASSISTANT"
    inserted_at: float
    thinking_enabled: bool
    search_enabled: bool
    status: str = "FINISHED"
    prompt: str = ""
    turn: Any = None


@dataclass
class SimSession:
    id: str
    account: str
    seq_id: int
    created_at: float
    updated_at: float
    title: str | None = None
    model_type: str | None = None
    next_message_id: int = 1
    last_response_id: int | None = None
    messages: dict[int, SimMessage] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """The `chat_session` object of create / fetch_page / history (docs/protocol.md)."""
        return {"id": self.id, "seq_id": self.seq_id, "agent": "chat", "model_type": self.model_type or "default",
                "title": self.title, "title_type": "SYSTEM" if self.title else "WIP", "version": len(self.messages),
                "current_message_id": self.last_response_id, "pinned": False,
                "inserted_at": self.created_at, "updated_at": self.updated_at}


@dataclass
class QueuedFault:
    fault: str
    remaining: int
    on: str  # endpoint name or "any"


class StreamSlot:
    """One active completion/continue stream of an account; `release()` is idempotent."""

    __slots__ = ("_state", "account", "_released")

    def __init__(self, state: SimState, account: str) -> None:
        self._state = state
        self.account = account
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._state.active[self.account] -= 1


class Generation:
    """A running reply that `chat/stop_stream` can stop."""

    __slots__ = ("stopped", "_event")

    def __init__(self) -> None:
        self.stopped = False
        self._event: asyncio.Event | None = None

    def stop(self) -> None:
        self.stopped = True
        if self._event is not None:
            self._event.set()

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake up early when stopped (a stall must not outlive a stop)."""
        if self.stopped:
            return
        if seconds < 0.5:
            await asyncio.sleep(seconds)
            return
        if self._event is None:
            self._event = asyncio.Event()
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
        except TimeoutError:
            pass


class SimState:
    """The simulated server's memory. `clock` is replaceable in tests (seconds since the epoch)."""

    def __init__(self, config: SimulatorConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.rng = random.Random(config.seed)
        self.pow = PowVerifier(self.rng, lambda: self.clock())
        self.tokens: dict[str, TokenInfo] = {}
        self.revoked: set[str] = set()  # preset (pasted) tokens dropped by a token_expired fault
        self.sessions: dict[str, SimSession] = {}
        self.generations: dict[tuple[str, int], Generation] = {}
        self.active: dict[str, int] = {}
        self.max_active: dict[str, int] = {}
        self.fault_queues: dict[str, list[QueuedFault]] = {}
        self.runtime_banned: set[str] = set()
        self.violations = 0
        self.requests: Counter[str] = Counter()
        self.recent_prompts: deque[str] = deque(maxlen=32)  # the last completion prompts (GET /_sim/prompts)
        self.counts: Counter[str] = Counter()
        self.faults_injected: Counter[str] = Counter()
        self.files = FileStore()
        self._seq = 210_000_000

    # --- accounts and tokens -------------------------------------------------------------------
    def is_banned(self, account: str) -> bool:
        user = self.config.user_by_account(account)
        return account in self.runtime_banned or bool(user and user.banned)

    def ban(self, account: str) -> None:
        self.runtime_banned.add(account)

    def issue_token(self, user: SimUser) -> str:
        token = base64.b64encode(os.urandom(48)).decode("ascii")  # 64 characters, like the 2026 tokens
        self.tokens[token] = TokenInfo(user.account, self.clock())
        return token

    def token_account(self, token: str | None) -> str | None:
        """The account of a valid token; expired tokens are forgotten."""
        if not token:
            return None
        info = self.tokens.get(token)
        if info is None:
            user = next((u for u in self.config.users if u.token and u.token == token), None)
            if user is None or token in self.revoked:
                return None
            info = self.tokens[token] = TokenInfo(user.account, self.clock())  # a token "pasted from a browser"
        ttl = self.config.token_ttl
        if ttl is not None and self.clock() - info.issued_at > ttl:
            del self.tokens[token]
            return None
        return info.account

    def invalidate_token(self, token: str) -> None:
        self.tokens.pop(token, None)
        if any(u.token == token for u in self.config.users):
            self.revoked.add(token)

    # --- sessions -------------------------------------------------------------------------------
    def create_session(self, account: str) -> SimSession:
        now = self.clock()
        self._seq += 1
        session = SimSession(id=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), account=account,
                             seq_id=self._seq, created_at=now, updated_at=now)
        self.sessions[session.id] = session
        self.counts["sessions_created"] += 1
        if self._seq % 512 == 0:
            self._sweep_sessions(now)
        while len(self.sessions) > MAX_SESSIONS:  # long benchmarks that never delete: drop the oldest
            del self.sessions[next(iter(self.sessions))]
        return session

    def _sweep_sessions(self, now: float) -> None:
        """Forget sessions idle for longer than their ttl (DeepSeek garbage-collects them too)."""
        limit = now - self.config.session_ttl
        for key in [k for k, s in self.sessions.items() if s.updated_at < limit]:
            del self.sessions[key]

    def session_of(self, account: str, session_id: Any) -> SimSession | None:
        session = self.sessions.get(session_id) if isinstance(session_id, str) else None
        return session if session is not None and session.account == account else None

    def delete_session(self, session: SimSession) -> None:
        self.sessions.pop(session.id, None)
        self.files.forget_sessions([session.id])
        self.counts["deletes"] += 1

    def delete_all(self, account: str) -> int:
        doomed = [k for k, s in self.sessions.items() if s.account == account]
        for key in doomed:
            del self.sessions[key]
        self.files.forget_sessions(doomed)
        self.counts["deletes"] += len(doomed)
        return len(doomed)

    # --- concurrent streams -----------------------------------------------------------------------
    def try_acquire_stream(self, account: str) -> StreamSlot | None:
        current = self.active.get(account, 0)
        if current >= self.config.max_streams_per_account:
            return None
        self.active[account] = current + 1
        if current + 1 > self.max_active.get(account, 0):
            self.max_active[account] = current + 1
        return StreamSlot(self, account)

    async def acquire_stream(self, account: str) -> StreamSlot | None:
        """A slot, or None (and a recorded violation) when the account is already at its limit.

        A short grace lets a stream whose client has just hung up finish its bookkeeping first: the
        gateway releases its lease as soon as it closes the connection, before this loop notices.
        """
        slot = self.try_acquire_stream(account)
        if slot is not None:
            return slot
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.over_limit_grace
        while loop.time() < deadline:
            await asyncio.sleep(0.005)
            slot = self.try_acquire_stream(account)
            if slot is not None:
                return slot
        self.violations += 1
        return None

    # --- faults -----------------------------------------------------------------------------------
    def add_fault(self, account: str, fault: str, count: int = 1, on: str = "completion") -> None:
        if fault not in FAULT_NAMES:
            raise ValueError(f"unknown fault {fault!r} (expected one of {', '.join(sorted(FAULT_NAMES))})")
        if on != "any" and on not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {on!r} for 'on' (expected 'any' or one of {', '.join(ENDPOINTS)})")
        if count > 0:
            self.fault_queues.setdefault(account, []).append(QueuedFault(fault, count, on))

    def take_fault(self, account: str, endpoint: str, applicable: frozenset[str]) -> str | None:
        """Consume one queued fault of `account` that applies to `endpoint`."""
        queue = self.fault_queues.get(account)
        if not queue:
            return None
        for entry in queue:
            if entry.on in (endpoint, "any") and entry.fault in applicable:
                entry.remaining -= 1
                if entry.remaining <= 0:
                    queue.remove(entry)
                return entry.fault
        return None

    # --- control API ------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        return {
            "violations": self.violations,
            "requests": dict(self.requests),
            "logins": self.counts["logins"],
            "login_failures": self.counts["login_failures"],
            "sessions_created": self.counts["sessions_created"],
            "deletes": self.counts["deletes"],
            "pow_challenges": self.counts["pow_challenges"],
            "pow_failures": self.counts["pow_failures"],
            "completions": self.counts["completions"],
            "continues": self.counts["continues"],
            "stop_streams": self.counts["stop_streams"],
            "stopped": self.counts["stopped"],
            "streams_finished": self.counts["streams_finished"],
            "version_refusals": self.counts["version_refusals"],  # late2026.py: the 40005 gate
            "empty_replies": self.counts["empty_replies"],
            "faults": dict(self.faults_injected),
            "active_streams": {k: v for k, v in self.active.items()},
            "active_total": sum(self.active.values()),
            "max_concurrent": dict(self.max_active),
            "sessions": len(self.sessions),
            "tokens": len(self.tokens),
            "files": self.files.stats(),
            "pending_faults": {k: [{"fault": e.fault, "count": e.remaining, "on": e.on} for e in q]
                               for k, q in self.fault_queues.items() if q},
        }

    def reset(self, *, everything: bool = False) -> None:
        """Zero counters and violations, drop queued faults and runtime bans; `everything` also
        forgets tokens, sessions and PoW challenges (running streams keep their slots)."""
        self.violations = 0
        self.requests.clear()
        self.recent_prompts.clear()
        self.counts.clear()
        self.faults_injected.clear()
        self.files.reset_counters()
        self.fault_queues.clear()
        self.runtime_banned.clear()
        self.max_active = {k: v for k, v in self.active.items() if v}
        if everything:
            self.tokens.clear()
            self.sessions.clear()
            self.pow.clear()
            self.files.clear()
        if self.config.seed is not None:
            self.rng.seed(self.config.seed)
