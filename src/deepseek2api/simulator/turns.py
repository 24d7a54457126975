"""One assistant reply as it is generated: the plan (pieces, where to stop), and the rounds that stream it.

A round is written in two layers. `_round_events` is a plain generator that decides WHAT happens (it
yields SSE bytes, `PACE` before every piece, or a `Stall`); `stream_round` decides WHEN (pacing,
batching writes, yielding to the event loop) and does the bookkeeping. The stream slot is released
just before the last bytes go out, so a client that starts its next request the moment it reads
`close` never looks like a concurrent stream.

Token accounting: `accumulated_token_usage` = ceil(generated characters / 2), counting THINK and
RESPONSE text (cumulative over continue rounds) — a stable stand-in for a tokenizer that tests can
recompute from `reply_for()`.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .replies import Reply
from .state import Generation, SimMessage, SimSession, SimState, StreamSlot
from .streams import MessageMeta

REFUSAL = "你好，这个问题我暂时无法回答，让我们换个话题再聊聊吧。"
_CITATION = re.compile(r"\[citation:\d+\]")


class _Pace:
    """Marker: a text piece follows; wait for its turn."""


PACE = _Pace()


@dataclass(frozen=True)
class Stall:
    seconds: float


@dataclass
class Turn:
    """An assistant message and everything needed to stream it over one or more rounds."""

    session: SimSession
    message: SimMessage
    meta: MessageMeta
    writer: Any
    reply: Reply
    think_pieces: list[str]
    content_pieces: list[str]
    search_steps: list[list[dict[str, Any]]]
    generation: Generation
    title: str | None = None  # sent at the end of the first round (first turn of a session only)
    stall: float = 0.0
    cut: bool = False
    content_filter: bool = False
    incomplete_marks: list[int] = field(default_factory=list)  # content-piece indexes that end a round
    content_pos: int = 0  # next content piece to send
    started: bool = False  # THINK/SEARCH already sent, RESPONSE fragment open
    chars: int = 0

    @property
    def usage(self) -> int:
        return (self.chars + 1) // 2


def split_pieces(text: str, rng: random.Random, chunk: tuple[int, int]) -> list[str]:
    """Cut `text` into pieces of `chunk` characters, always splitting `[citation:N]` markers (as upstream)."""
    if not text:
        return [""]
    forced: set[int] = set()
    for match in _CITATION.finditer(text):
        forced.update((match.start() + 2, match.start() + 8))
    lo, hi = chunk
    pieces, i, n = [], 0, len(text)
    while i < n:
        j = min(n, i + (lo if lo == hi else rng.randint(lo, hi)))
        for k in range(i + 1, j):
            if k in forced:
                j = k
                break
        pieces.append(text[i:j])
        i = j
    return pieces


def plan_turn(*, session: SimSession, message: SimMessage, meta: MessageMeta, writer: Any, reply: Reply,
              rng: random.Random, chunk: tuple[int, int], title: str | None, stall: float = 0.0,
              cut: bool = False, content_filter: bool = False, incomplete_rounds: int = 0) -> Turn:
    think = split_pieces(reply.reasoning, rng, chunk) if meta.thinking and reply.reasoning else []
    content = split_pieces(reply.content, rng, chunk)
    steps = [reply.results[: i + 1] for i in range(len(reply.results))] if meta.search else []
    n = len(content)
    marks = [max(1, (n * k) // (incomplete_rounds + 1)) for k in range(1, incomplete_rounds + 1)]
    return Turn(session=session, message=message, meta=meta, writer=writer, reply=reply, think_pieces=think,
                content_pieces=content, search_steps=steps, generation=Generation(), title=title, stall=stall,
                cut=cut, content_filter=content_filter, incomplete_marks=marks)


def _round_events(turn: Turn, clock: Callable[[], float], resume: bool) -> Iterator[Any]:
    """What one round sends. Sets `turn.message.status` to how it ended."""
    w, gen, msg = turn.writer, turn.generation, turn.message
    yield w.opening(clock())
    if turn.stall:
        yield Stall(turn.stall)
        turn.stall = 0.0
        if gen.stopped:
            yield from _stopped(turn, clock)
            return
    if resume:
        yield w.resume(turn.usage)
    if not turn.started:
        if turn.search_steps:
            yield w.begin_search(turn.reply.queries)
            for step in turn.search_steps:
                yield PACE
                if gen.stopped:
                    yield from _stopped(turn, clock)
                    return
                yield w.results(step)
            yield w.search_done(turn.search_steps[-1])
        if turn.think_pieces:
            started = time.monotonic()
            for i, piece in enumerate(turn.think_pieces):
                yield PACE
                if gen.stopped:
                    yield from _stopped(turn, clock)
                    return
                turn.chars += len(piece)
                yield w.begin("THINK", piece) if i == 0 else w.text(piece)
            yield w.think_done(round(time.monotonic() - started, 9))
        yield PACE
        first = turn.content_pieces[0]
        turn.chars += len(first)
        turn.started, turn.content_pos = True, 1
        yield w.begin("RESPONSE", first)
    pieces = turn.content_pieces
    while True:
        pos = turn.content_pos
        if turn.incomplete_marks and pos >= turn.incomplete_marks[0]:
            turn.incomplete_marks.pop(0)
            msg.status = "INCOMPLETE"
            yield w.finish("INCOMPLETE", turn.usage)
            yield w.closing(clock(), _take_title(turn))
            return
        if turn.cut and pos >= max(1, len(pieces) // 2):
            msg.status = "FAILED"  # the connection just ends: no status, no close
            return
        if turn.content_filter and pos >= max(1, len(pieces) // 2):
            msg.status = "CONTENT_FILTER"
            yield w.content_filter(REFUSAL, turn.usage)
            yield w.closing(clock(), _take_title(turn))
            return
        if pos >= len(pieces):
            break
        yield PACE
        if gen.stopped:
            yield from _stopped(turn, clock)
            return
        turn.content_pos = pos + 1
        turn.chars += len(pieces[pos])
        yield w.text(pieces[pos])
    msg.status = "FINISHED"
    yield w.tip()
    yield w.finish("FINISHED", turn.usage)
    yield w.closing(clock(), _take_title(turn))


def _stopped(turn: Turn, clock: Callable[[], float]) -> Iterator[bytes]:
    turn.message.status = "STOPPED"
    yield turn.writer.finish("STOPPED", turn.usage)
    yield turn.writer.closing(clock(), _take_title(turn))


def _take_title(turn: Turn) -> str | None:
    title, turn.title = turn.title, None
    if title:
        turn.session.title = title
    return title


class _Pacer:
    """Spaces pieces at `rate` per second (plus seeded jitter); with no rate just yields to the loop."""

    def __init__(self, rate: float | None, jitter: float, rng: random.Random, generation: Generation) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.jitter = jitter
        self.rng = rng
        self.generation = generation
        self.next_at: float | None = None

    @property
    def idle(self) -> bool:
        return not self.interval and not self.jitter

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self.next_at is None or self.next_at < now - 1.0:
            self.next_at = now
        self.next_at += self.interval
        delay = self.next_at - now + (self.rng.random() * self.jitter if self.jitter else 0.0)
        if delay > 0:
            await self.generation.sleep(delay)
        else:
            await asyncio.sleep(0)


async def stream_round(turn: Turn, state: SimState, slot: StreamSlot, *, resume: bool, rate: float | None,
                       rng: random.Random) -> AsyncGenerator[bytes, None]:
    """The body of one completion or continue round (see the module doc)."""
    config = state.config
    per_write = config.events_per_write
    pacer = _Pacer(rate, config.jitter, rng, turn.generation)
    key = (turn.session.id, turn.meta.message_id)
    state.generations[key] = turn.generation
    turn.message.status = "WIP"
    done = False

    def finish_bookkeeping() -> None:
        nonlocal done
        if done:
            return
        done = True
        slot.release()
        if state.generations.get(key) is turn.generation:
            del state.generations[key]
        if turn.generation.stopped:
            state.counts["stopped"] += 1
        if turn.message.status == "WIP":  # the client hung up
            turn.message.status = "FAILED"
        elif turn.message.status in ("FINISHED", "STOPPED", "CONTENT_FILTER", "INCOMPLETE"):
            state.counts["streams_finished"] += 1
        if turn.message.status != "INCOMPLETE":  # nothing more to send: keep only what history needs
            turn.think_pieces, turn.content_pieces, turn.search_steps = [], [], []
        turn.session.updated_at = state.clock()

    buf: list[bytes] = []  # the last event is always held back until the bookkeeping is done
    try:
        for item in _round_events(turn, state.clock, resume):
            if item.__class__ is bytes:
                if item:
                    if len(buf) >= per_write:
                        chunk = b"".join(buf)
                        buf.clear()
                        yield chunk
                    buf.append(item)
            elif item is PACE:
                if pacer.idle:
                    if len(buf) >= per_write:
                        chunk = b"".join(buf)
                        buf.clear()
                        yield chunk
                        await asyncio.sleep(0)
                else:
                    if buf:
                        chunk = b"".join(buf)
                        buf.clear()
                        yield chunk
                    await pacer.wait()
            else:  # Stall
                if buf:
                    chunk = b"".join(buf)
                    buf.clear()
                    yield chunk
                await turn.generation.sleep(item.seconds)
        finish_bookkeeping()
        if buf:
            yield b"".join(buf)
    finally:
        finish_bookkeeping()
