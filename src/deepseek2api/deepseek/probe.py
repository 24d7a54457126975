"""The live probe of one account: does today's DeepSeek still answer the gateway the way it expects?

`deepseek2api check --live` runs it for every configured account, the console for one. Steps, each
reported with what it found: the token is valid (`users/current`), the model settings (modes the
account may use), a session is created, a PoW challenge (algorithm and difficulty) is solved, one tiny
completion is decoded (with the shapes the decoder did not know: the drift canary), the session is
deleted. The first failing step ends the probe; the session is deleted whatever happens.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .client import PATH_COMPLETION, DeepSeekClient
from .decode import StreamDecoder
from .errors import ErrorKind, UpstreamFailure
from .events import ContentDelta, Finished, ReasoningDelta, UpstreamError
from .pow import PowError, PowUnsolvable, encode_pow_response, solve_async

PROBE_PROMPT = "Reply with the single word: pong"
ANSWER_SAMPLE = 40  # characters of the probe's answer shown (our own prompt's answer, not user text)


@dataclass(slots=True)
class ProbeStep:
    name: str
    ok: bool
    detail: str
    seconds: float = 0.0


@dataclass(slots=True)
class LiveReport:
    """What the probe found on one account."""

    account_id: str
    steps: list[ProbeStep] = field(default_factory=list)
    unknown_shapes: list[str] = field(default_factory=list)  # "path response/x" … seen in the probe's reply
    error_kind: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    def as_dict(self) -> dict[str, object]:
        return {"account_id": self.account_id, "ok": self.ok, "error_kind": self.error_kind,
                "unknown_shapes": list(self.unknown_shapes),
                "steps": [{"name": s.name, "ok": s.ok, "detail": s.detail, "seconds": round(s.seconds, 3)}
                          for s in self.steps]}


class _Failed(Exception):
    def __init__(self, error: UpstreamError) -> None:
        super().__init__(error.message)
        self.error = error


async def probe_account(client: DeepSeekClient, account_id: str, token: str, *, proxy: str | None = None,
                        clock: Callable[[], float] = time.perf_counter) -> LiveReport:
    """Run every step on one account with `token` (the caller logs in or takes a pasted token)."""
    report = LiveReport(account_id)
    session_id: str | None = None

    async def step(name: str, work: Callable[[], Awaitable[str]]) -> None:
        started = clock()
        try:
            detail = await work()
        except UpstreamFailure as failure:
            report.steps.append(ProbeStep(name, False, f"{failure.kind.value}: {failure.error.message}",
                                          clock() - started))
            raise _Failed(failure.error) from None
        report.steps.append(ProbeStep(name, True, detail, clock() - started))

    async def token_valid() -> str:
        await client.current_user(token, proxy=proxy)
        return "accepted"

    async def settings() -> str:  # optional information: never fails the probe
        try:
            modes = await client.model_settings(token, proxy=proxy)
        except UpstreamFailure as failure:
            return f"not readable ({failure.kind.value}); modes are tried as requested"
        if not modes.enabled:
            return "no mode list in the answer (read as: every mode available)"
        return ", ".join(f"{mode} {'on' if on else 'off'}" for mode, on in sorted(modes.enabled.items()))

    async def create() -> str:
        nonlocal session_id
        session_id = await client.create_session(token, proxy=proxy)
        return "created"

    pow_header = ""

    async def pow_step() -> str:
        nonlocal pow_header
        challenge = await client.create_pow_challenge(token, PATH_COMPLETION, proxy=proxy)
        try:
            answer = await solve_async(challenge)
        except (PowError, PowUnsolvable) as exc:
            raise UpstreamFailure(UpstreamError(ErrorKind.POW_REJECTED, f"cannot solve: {exc}")) from None
        pow_header = encode_pow_response(challenge, answer, PATH_COMPLETION)
        return f"{challenge.algorithm}, difficulty {challenge.difficulty}"

    async def completion() -> str:
        assert session_id is not None
        decoder = StreamDecoder()
        text: list[str] = []
        thinking = 0
        status = None
        async for event in client.completion(token, session_id=session_id, prompt=PROBE_PROMPT,
                                             pow_header=pow_header, thinking=False, search=False,
                                             proxy=proxy, decoder=decoder):
            if isinstance(event, UpstreamError):
                raise UpstreamFailure(event)
            if isinstance(event, ContentDelta):
                text.append(event.text)
            elif isinstance(event, ReasoningDelta):
                thinking += len(event.text)
            elif isinstance(event, Finished):
                status = event.status
        report.unknown_shapes = [f"{kind} {shape}" for kind, shape in decoder.unknown]
        answer = "".join(text)
        if not answer and not thinking:
            raise UpstreamFailure(UpstreamError(ErrorKind.EMPTY_ANSWER, f"the reply was empty (status {status})"))
        sample = answer.strip()[:ANSWER_SAMPLE]
        new = f"; {len(report.unknown_shapes)} unknown shape(s)" if report.unknown_shapes else ""
        return f"status {status}, answer {sample!r}{new}"

    try:
        await step("token", token_valid)
        await step("model settings", settings)
        await step("session create", create)
        await step("pow", pow_step)
        await step("completion", completion)
    except _Failed as failed:
        report.error_kind = failed.error.kind.value
    finally:
        if session_id is not None:
            started = clock()
            try:
                await client.delete_session(token, session_id=session_id, proxy=proxy)
            except UpstreamFailure as failure:
                report.steps.append(ProbeStep("session delete", False, f"{failure.kind.value}: "
                                              f"{failure.error.message}", clock() - started))
                report.error_kind = report.error_kind or failure.kind.value
            else:
                report.steps.append(ProbeStep("session delete", True, "deleted", clock() - started))
    return report
