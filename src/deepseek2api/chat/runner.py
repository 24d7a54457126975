"""One assistant turn, end to end: lease → token → session + PoW → completion → decode → assemble.

The runner is where "retry before the first byte, never after" lives (docs/architecture.md). It yields
surface-neutral `OutEvent`s; renderers turn them into OpenAI chunks (or, later, other protocols).
Every path releases the lease exactly once: the lease is an `async with` around the attempt, and an
upstream stream that is abandoned (client gone, stop sequence hit) is closed and stopped upstream
before the lease goes back.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection
from contextlib import AbstractAsyncContextManager, aclosing
from dataclasses import dataclass
from typing import Literal, NoReturn, Protocol

from ..deepseek.client import PATH_COMPLETION, PATH_CONTINUE, DeepSeekClient
from ..deepseek.decode import StreamDecoder
from ..deepseek.errors import ErrorKind, UpstreamFailure
from ..deepseek.events import Finished, Ready, UpstreamError
from ..pacing import LoopPacer
from ..settings import Settings
from .admission import admitted
from .assemble import OutContent, OutEvent, OutFinish, OutReasoning, TurnAssembler
from .continuation import Continuation, SessionBook, answered, next_held
from .errors import TurnFailed
from .housekeeping import best_effort, delete_session
from .modes import ModeBook
from .prompt import ASSISTANT, END_OF_SENTENCE, USER, build_prompt_async, neutralize
from .shaping import AnswerShaper, needs_shaping, needs_stripping, without_markup
from .token_cap import TokenCap
from .tools.prompt import guard
from .tools.spec import ToolCallRecord
from .turn import Turn
from .uploads import StagedTurn, TurnUploads
from .usage import TurnUsage, count_usage, load_soon

log = logging.getLogger(__name__)


class Lease(Protocol):
    """What the runner needs from an account lease (pool.AccountLease or a passthrough token)."""

    account_id: str
    proxy: str | None

    async def token(self) -> str: ...
    async def relogin(self) -> str: ...
    def report(self, error: UpstreamError) -> None: ...
    def report_success(self) -> None: ...


class LeaseSource(Protocol):
    def lease(self, *, exclude: Collection[str] = ()) -> AbstractAsyncContextManager[Lease]: ...


class AccountSource(Protocol):
    """A `LeaseSource` that can be steered: the in-process pool, the shared pool and passthrough all take
    these keywords (`prefer`: that account if free now, a hint; `only`: that account and no other)."""

    def lease(self, *, exclude: Collection[str] = (), prefer: str | None = None,
              only: str | None = None) -> AbstractAsyncContextManager[Lease]: ...


class GatedSource(Protocol):
    """A lease source with an admission for the whole turn (a named key's checks and accounting)."""

    def admit(self, turn: Turn, trace: TurnTrace) -> AbstractAsyncContextManager[None]: ...


class PreparedTurns(Protocol):
    """Sessions + completion PoWs made ahead of time (chat/prewarm.py); each handed out once."""

    def take(self, account_id: str, token: str, proxy: str | None) -> tuple[str, str] | None: ...


class RunnerObserver(Protocol):
    """Told about upstream failures as the runner meets them (api/metrics.py's GatewayMetrics fits)."""

    def upstream_error(self, kind: str, *, failover: bool = False) -> None: ...


class _Relogin(Exception):
    """The token was rejected before any output: log in again and retry on the same account."""


class _Repair(Exception):
    """The answer missed its required shape (tool call, JSON) and nothing reached the client: ask once more."""

    def __init__(self, correction: str, answer: str) -> None:
        super().__init__(correction)
        self.correction = correction
        self.answer = answer


def repair_prompt(prompt: str, answer: str, correction: str) -> str:
    """The prompt for the one repair round: the failed (visible) answer as an assistant turn, then the
    correction as the user's next turn. The answer is model text and is neutralised like client text;
    the correction is the gateway's own trusted text."""
    return f"{prompt}{ASSISTANT}{guard(neutralize(answer))}{END_OF_SENTENCE}{USER}{correction}"


class _Fallback(Exception):
    """A continued session failed before any output: re-send the whole conversation (chat/continuation.py)."""


class _TryNextAccount(Exception):
    def __init__(self, error: UpstreamError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(slots=True)
class TurnTrace:
    """Facts about the turn for the access log and the response (never secrets)."""

    account_id: str | None = None
    attempts: int = 0
    upstream_tokens: int | None = None  # DeepSeek's own `accumulated_token_usage`, for comparison
    first_output: float | None = None  # perf_counter of the first event yielded (buffered: the finish)
    usage: TurnUsage | None = None  # the finish's counted usage (the metrics and the console read it)
    model_fallback: str | None = None  # "expert->default" when the account's settings disabled the mode


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    max_failover: int = 3
    max_continue_rounds: int = 8
    delete_session: bool = True
    citations: Literal["link", "strip"] = "link"
    disabled_mode: Literal["fallback", "refuse"] = "fallback"  # a mode the account's settings disable

    @classmethod
    def from_settings(cls, settings: Settings) -> RunnerOptions:
        """The options the config asks for (its defaults are the only defaults that matter)."""
        return cls(max_failover=max(1, settings.pool.max_failover),
                   max_continue_rounds=settings.upstream.max_continue_rounds,
                   delete_session=settings.upstream.delete_session,
                   citations=settings.output.citations,
                   disabled_mode=settings.upstream.disabled_mode)


# ---- empty answers and disabled modes (today's DeepSeek) ------------------------------------

EMPTY_RETRIES = 1  # an empty answer is retried once on another account, then it is the turn's error
MODE_FALLBACK = "default"


def empty_answer_error(persona: str, model_type: str, accounts: int) -> UpstreamError:
    """The error of a turn whose replies were empty on every account tried, naming the likely causes."""
    mode = f"the {model_type} mode is not available to these accounts (pick another model), " \
        if model_type != MODE_FALLBACK else ""
    return UpstreamError(ErrorKind.EMPTY_ANSWER,
                         f"DeepSeek finished with an empty answer (no text, no thinking, no tool call) on {accounts} "
                         f"account(s). Likely causes: {mode}restricted accounts (check them in the console), or an "
                         f"outdated client identity ({persona}; see upstream.client_version)")


FALLBACK_HEADER = "x-ds2api-model-fallback"


def fallback_header(trace: TurnTrace) -> dict[str, str]:
    """`X-DS2API-Model-Fallback: expert->default` when the turn ran in the default mode instead."""
    return {FALLBACK_HEADER: trace.model_fallback} if trace.model_fallback else {}


def _refuse_empty(outs: list[OutEvent], lease: Lease) -> None:
    """An answer that finished with no text, no thinking and no tool call is a failure, not a reply: it
    is counted on the account and tried on another one (the caller has sent nothing yet)."""
    for out in outs:
        if isinstance(out, OutFinish) and out.upstream_status != "CONTENT_FILTER" and out.finish_reason == "stop" \
                and not out.content_text and not out.reasoning_text and not out.tool_calls:
            empty = UpstreamError(ErrorKind.EMPTY_ANSWER, "the reply finished with nothing in it")
            lease.report(empty)  # counted per account (console)
            raise _TryNextAccount(empty)


class TurnRunner:
    """Runs chat turns against DeepSeek through leased accounts."""

    def __init__(self, client: DeepSeekClient, options: RunnerOptions,
                 prepared: PreparedTurns | None = None, observer: RunnerObserver | None = None,
                 uploads: TurnUploads | None = None, sessions: SessionBook | None = None) -> None:
        self.sessions = sessions  # upstream.continue_sessions (chat/continuation.py); None: always re-send
        self.client = client
        self.options = options
        self.prepared = prepared
        self.observer = observer
        self.uploads = uploads or TurnUploads()
        self.modes = ModeBook()  # which modes each account's settings allow (chat/modes.py)

    async def run(self, request: Turn, leases: LeaseSource,
                  trace: TurnTrace | None = None, *, buffered: bool = False) -> AsyncGenerator[OutEvent, None]:
        """`_run_leased` inside the lease source's admission when it has one (a named key's rules and
        usage, api/keys/gate.py): the one place every surface's turn passes before its first lease and
        after its last event."""
        trace = trace if trace is not None else TurnTrace()
        turns = self._run_leased(request, leases, trace, buffered=buffered)
        # a GatedSource (getattr: an isinstance check on a runtime Protocol costs ~10 µs a request)
        admit: Callable[[Turn, TurnTrace], AbstractAsyncContextManager[None]] | None = getattr(leases, "admit", None)
        if admit is None:
            async with aclosing(turns) as events:
                async for event in events:
                    yield event
            return
        async with admit(request, trace), aclosing(turns) as events:
            async for event in events:
                yield event

    async def _run_leased(self, request: Turn, leases: LeaseSource,
                          trace: TurnTrace | None = None, *, buffered: bool = False) -> AsyncGenerator[OutEvent, None]:
        """Yield the turn's output; raises `TurnFailed` or `pool.PoolExhausted`.

        The prompt is built here (once per turn, whatever the surface), and `OutFinish.usage` carries
        the turn's token counts, so every surface reports the same numbers.

        `buffered`: the caller sends nothing before the turn is complete (a non-stream response) and
        reads the whole answer from `OutFinish`, so text deltas are not yielded and a failure in the
        middle of an answer is still retried on another account.

        A turn with tools or `response_format` goes through `AnswerShaper` (chat/shaping.py): calls come
        out as `OutToolCall`s and on `OutFinish.tool_calls`; a missed shape gets one repair round while
        nothing reached the client, then `AnswerRejected`.
        """
        trace = trace if trace is not None else TurnTrace()
        load_soon()  # the tokenizer (not loaded while idle), ready by the time this turn counts its usage
        prompt = await build_prompt_async(request)  # a worker thread for a large turn
        # files: history over the inline limit and attachments (chat/uploads.py); raises AttachmentError
        staged = await self.uploads.stage(request, prompt)
        follow = self.sessions.plan(request, staged) if self.sessions is not None else None
        tried: list[str] = []
        last_error: UpstreamError | None = None
        max_accounts = max(1, self.options.max_failover)
        shaping = needs_shaping(request)
        stripping = needs_stripping(request)  # no tools, yet call markup is possible: made readable
        retried = False
        empties = 0
        while True:
            try:
                lease_cm = _leasing(leases, tried, follow.held.account_id if follow is not None else None)
                lease = await lease_cm.__aenter__()
            except Exception:
                if last_error is not None:  # accounts were tried: their error says more than "pool empty"
                    raise TurnFailed(last_error, emitted=False, attempts=trace.attempts) from None
                raise
            admitted()  # a stream may start sending now (chat/admission.py)
            if last_error is not None:  # logged here, not at the failure: a single-token source has no other
                log.info("request %s: retrying on account %s", request.request_id, lease.account_id)
            exc_info: tuple[type[BaseException] | None, BaseException | None, object] = (None, None, None)
            if follow is not None and lease.account_id != follow.held.account_id:  # busy: re-send instead
                self._drop(follow)
                follow = None
            try:
                tried.append(lease.account_id)
                trace.account_id = lease.account_id
                trace.attempts += 1
                shaper = AnswerShaper(request, buffered=buffered, retried=retried) if shaping else None
                attempt = self._attempt(request, staged, lease, trace, buffered, shaper, follow)
                async with aclosing(without_markup(attempt) if stripping else attempt) as events:
                    async for event in events:  # aclosing: the attempt's cleanup runs before the lease goes back
                        if trace.first_output is None:
                            trace.first_output = time.perf_counter()
                        if isinstance(event, OutFinish):
                            trace.usage = event.usage
                        yield event
                return
            except _Fallback:
                follow = None
                tried.remove(lease.account_id)  # the full re-send may use the same account
                log.info("request %s: the continued session failed; re-sending the conversation", request.request_id)
            except _Repair as repair:
                retried = True
                staged = staged.with_prompt(repair_prompt(staged.prompt, repair.answer, repair.correction))
                tried.remove(lease.account_id)  # the repair round may use the same account
                log.info("request %s: the answer missed its required shape; one repair round", request.request_id)
            except _TryNextAccount as retry:
                last_error = retry.error
                give_up = len(tried) >= max_accounts
                if retry.error.kind is ErrorKind.EMPTY_ANSWER:  # retried once, then the turn's error
                    empties += 1
                    give_up = give_up or empties > EMPTY_RETRIES
                    last_error = retry.error = empty_answer_error(self.client.profile.describe(),
                                                                  staged.model_type, empties)
                log.info("request %s: account %s failed before output (%s)%s", request.request_id,
                         lease.account_id, retry.error.kind.value, "; giving up" if give_up else "")
                if self.observer is not None:
                    self.observer.upstream_error(retry.error.kind.value, failover=not give_up)
                if give_up:
                    raise TurnFailed(retry.error, emitted=False, attempts=trace.attempts) from None
            except BaseException as exc:
                exc_info = (type(exc), exc, exc.__traceback__)
                if isinstance(exc, TurnFailed) and self.observer is not None:
                    self.observer.upstream_error(exc.error.kind.value)
                raise
            finally:
                await lease_cm.__aexit__(*exc_info)  # type: ignore[arg-type]

    async def _attempt(self, request: Turn, staged: StagedTurn, lease: Lease, trace: TurnTrace, buffered: bool,
                       shaper: AnswerShaper | None = None,
                       follow: Continuation | None = None) -> AsyncGenerator[OutEvent, None]:
        """One account's try. Raises `_TryNextAccount` only while nothing has been emitted."""
        relogged = False
        while True:  # runs twice only when the token is rejected and one re-login is due
            try:
                attempt = self._attempt_with_token(request, staged, lease, trace, relogged, buffered, shaper, follow)
                async with aclosing(attempt) as outs:
                    async for out in outs:
                        yield out
                return
            except _Relogin:
                relogged = True

    async def _attempt_with_token(self, request: Turn, staged: StagedTurn, lease: Lease, trace: TurnTrace,
                                  relogin: bool, buffered: bool, shaper: AnswerShaper | None = None,
                                  follow: Continuation | None = None) -> AsyncGenerator[OutEvent, None]:
        client = self.client
        if follow is not None:
            staged = follow.staged  # only the new part, into the session that holds the rest
        kept = False  # the session stays upstream for the next turn (chat/continuation.py)
        final: OutFinish | None = None
        proxy = lease.proxy
        spec = request.model
        assembler = TurnAssembler(request.stop, citations=self.options.citations)
        cap = TokenCap(request.max_tokens) if request.max_tokens is not None else None
        emitted = False  # output went to the caller (never, while buffered)
        session_id: str | None = None
        response_id: int | None = None
        finished = False
        stream: AsyncIterator[object] | None = None
        try:
            token = await (lease.relogin() if relogin else lease.token())
        except UpstreamFailure as failure:  # the pool already recorded what the login said
            if failure.kind.try_another_account_before_prompt:
                raise _TryNextAccount(failure.error) from None
            raise TurnFailed(failure.error, emitted=False, attempts=trace.attempts) from None
        try:
            model_type = await self._usable_mode(staged.model_type, lease, token, trace)
            if model_type != staged.model_type:  # the files go up for the mode the turn really runs in
                staged = dataclasses.replace(staged, model_type=model_type)
            ref_file_ids = await self._upload_files(staged, lease, token, relogin)
            try:
                if follow is not None:
                    session_id = follow.held.session_id
                    pow_header = await client.pow_header(token, PATH_COMPLETION, proxy=proxy)
                else:
                    ready = None if self.prepared is None else self.prepared.take(lease.account_id, token, proxy)
                    session_id, pow_header = ready or await client.prepare_completion(token, proxy=proxy)
            except UpstreamFailure as failure:
                self._before_output(lease, failure.error, relogin, prompt_sent=False)
            decoder = StreamDecoder()  # shared with continue rounds, so repeated snapshots are not re-emitted
            stream = client.completion(
                token, session_id=session_id, prompt=staged.prompt, pow_header=pow_header,
                thinking=spec.thinking, search=spec.search, model_type=model_type, proxy=proxy,
                decoder=decoder, ref_file_ids=ref_file_ids,
                parent_message_id=follow.held.response_id if follow is not None else None,
            )
            rounds = 0
            pacer = LoopPacer()  # buffered upstream data must not hold the loop (pacing.py)
            while True:
                incomplete = False
                async for event in stream:
                    await pacer.tick()
                    if isinstance(event, UpstreamError):
                        if follow is not None and not emitted and event.kind is not ErrorKind.TOKEN_INVALID:
                            raise _Fallback()
                        self._failed_after_prompt(lease, event, relogin, emitted, trace)
                    if isinstance(event, Ready):
                        response_id = event.response_message_id
                        continue
                    if isinstance(event, Finished) and event.status == "INCOMPLETE" \
                            and rounds < self.options.max_continue_rounds:
                        incomplete = True
                        continue
                    outs = assembler.push(event)
                    if cap is not None and outs:
                        outs = await _capped(outs, cap, assembler)
                    if not emitted:
                        _refuse_empty(outs, lease)
                    for out in outs:
                        if shaper is not None:
                            if isinstance(out, OutFinish):
                                out = await _with_usage(out, staged.counted_text)
                            for shaped in shaper.push(out):  # nothing but OutFinish while buffered
                                emitted = emitted or not isinstance(shaped, OutFinish)
                                final = shaped if isinstance(shaped, OutFinish) else final
                                yield shaped
                            continue
                        if isinstance(out, (OutContent, OutReasoning)):
                            if buffered:
                                continue
                            emitted = True
                        elif isinstance(out, OutFinish):
                            out = await _with_usage(out, staged.counted_text)
                            final = out
                        yield out
                    if assembler.ended_early or (shaper is not None and shaper.stopped):
                        break
                halted = assembler.ended_early or (shaper is not None and shaper.stopped)
                if halted or not incomplete or response_id is None:
                    break
                rounds += 1
                await _close(stream)
                stream = None
                try:
                    pow_header = await client.pow_header(token, PATH_CONTINUE, proxy=proxy)
                except UpstreamFailure as failure:
                    self._failed_after_prompt(lease, failure.error, relogin, emitted, trace)
                stream = client.continue_stream(token, session_id=session_id, message_id=response_id,
                                                pow_header=pow_header, proxy=proxy, decoder=decoder)
            finished = not (assembler.ended_early or (shaper is not None and shaper.stopped))
            tail = assembler.finish()
            if finished and not emitted:
                _refuse_empty(tail, lease)
            if cap is not None and tail:
                tail = await _capped(tail, cap, assembler)
            for out in tail:
                if isinstance(out, OutFinish):
                    out = await _with_usage(out, staged.counted_text)
                if shaper is not None:
                    for shaped in shaper.push(out):
                        emitted = emitted or not isinstance(shaped, OutFinish)
                        final = shaped if isinstance(shaped, OutFinish) else final
                        yield shaped
                else:
                    final = out if isinstance(out, OutFinish) else final
                    if not (buffered and isinstance(out, (OutContent, OutReasoning))):
                        yield out
            trace.upstream_tokens = assembler.upstream_tokens
            lease.report_success()
            if finished and final is not None and response_id is not None and session_id is not None \
                    and (shaper is None or shaper.retry is None):
                kept = self._hold(request, final, follow, lease.account_id, session_id, response_id, staged.prompt)
        finally:
            if stream is not None:
                await _close(stream)
            if session_id is not None and not kept:
                await self._cleanup(token, session_id, None if finished else response_id, proxy)
            if self.sessions is not None:  # sessions no longer continued, deleted while the lease is ours
                for doomed in self.sessions.doomed(lease.account_id):
                    await delete_session(client, token, doomed, proxy)
        if shaper is not None and shaper.retry is not None:  # after the cleanup: the account is free again
            raise _Repair(shaper.retry, shaper.answer)

    async def _usable_mode(self, model_type: str, lease: Lease, token: str, trace: TurnTrace) -> str:
        """`model_type`, or the default mode when the account's settings disable it and the operator chose
        "fallback" (the response says so); "refuse" fails the turn with MODE_DISABLED (a 400)."""
        if model_type == MODE_FALLBACK:
            return model_type
        allowed = await self.modes.allows(self.client, lease.account_id, token, lease.proxy, model_type)
        if allowed is not False:
            return model_type
        if self.options.disabled_mode == "refuse":
            raise TurnFailed(UpstreamError(
                ErrorKind.MODE_DISABLED,
                f"DeepSeek's settings for this account disable the {model_type} mode; pick a model in the default "
                f"mode, or set upstream.disabled_mode to \"fallback\""), emitted=False, attempts=trace.attempts)
        trace.model_fallback = f"{model_type}->{MODE_FALLBACK}"
        return MODE_FALLBACK

    def _hold(self, request: Turn, final: OutFinish, follow: Continuation | None, account_id: str, session_id: str,
              response_id: int, sent: str) -> bool:
        """Keep the session for the conversation's next turn (True), when continuing is on."""
        sessions = self.sessions
        if sessions is None or not sessions.options.enabled:
            return False
        calls = [ToolCallRecord(c.id, c.name, c.arguments) for c in final.tool_calls]
        held = next_held(follow.held if follow is not None else None, account_id, session_id, response_id,
                         len(sent), sessions.clock())
        sessions.keep(answered(request, final.content_text, calls), held)
        if follow is not None:
            sessions.continued += 1
        return True

    def _drop(self, follow: Continuation) -> None:
        if self.sessions is not None:
            self.sessions.forget(follow.held)

    async def _upload_files(self, staged: StagedTurn, lease: Lease, token: str, relogged: bool) -> list[str]:
        """The turn's files on this account (uploaded again on each account tried: ids are per account).
        An account failure (token, rate limit, network…) goes the way of any failure before the prompt;
        a file failure (too large, unsupported, unparsed) is final: no other account would read it."""
        if not staged.uploads:
            return []
        try:
            return await self.uploads.upload(self.client, staged, token, lease.proxy)
        except UpstreamFailure as failure:
            self._before_output(lease, failure.error, relogged, prompt_sent=False)

    def _before_output(self, lease: Lease, error: UpstreamError, relogged: bool, prompt_sent: bool = True) -> NoReturn:
        """A failure while nothing was sent: re-login, another account, or give up. Always raises.
        After the prompt went upstream a mute or ban is not carried to another account (see ErrorKind)."""
        if error.kind is ErrorKind.TOKEN_INVALID and not relogged:
            raise _Relogin()
        if error.kind.blames_account or error.kind in (ErrorKind.NETWORK, ErrorKind.WAF_BLOCKED):
            lease.report(error)
        kind = error.kind
        if kind.try_another_account if prompt_sent else kind.try_another_account_before_prompt:
            raise _TryNextAccount(error)
        raise TurnFailed(error, emitted=False, attempts=0)

    def _failed_after_prompt(self, lease: Lease, error: UpstreamError, relogged: bool, emitted: bool,
                             trace: TurnTrace) -> NoReturn:
        """A failure once the prompt went upstream (the reply stream or a continue round's PoW): while
        nothing reached the caller it goes the way of `_before_output`, after that the turn fails."""
        if not emitted:
            self._before_output(lease, error, relogged)
        if error.kind.blames_account:
            lease.report(error)
        raise TurnFailed(error, emitted=True, attempts=trace.attempts)

    async def _cleanup(self, token: str, session_id: str, running_reply: int | None, proxy: str | None) -> None:
        """Stop a reply we abandoned and delete the web session, while the lease is still ours."""
        if running_reply is not None:
            await best_effort(self.client.stop_stream(token, session_id=session_id,
                                                      response_message_id=running_reply, proxy=proxy),
                              "stopping an abandoned reply")
        await self._delete_session(token, session_id, proxy)

    async def _delete_session(self, token: str, session_id: str, proxy: str | None) -> None:
        if self.options.delete_session:
            await delete_session(self.client, token, session_id, proxy)


def _leasing(leases: LeaseSource, tried: list[str], prefer: str | None) -> AbstractAsyncContextManager[Lease]:
    """A lease, asking for the account holding the session to continue when the source can be steered
    (`prefer`: that account only if it is free now; otherwise another one and a full re-send)."""
    if prefer is not None and "prefer" in inspect.signature(leases.lease).parameters:
        return leases.lease(exclude=tried, prefer=prefer)  # type: ignore[call-arg]
    return leases.lease(exclude=tried)


async def _capped(outs: list[OutEvent], cap: TokenCap, assembler: TurnAssembler) -> list[OutEvent]:
    """`outs` with `max_tokens` applied: text past the cap is cut and the turn ends with "length"."""
    kept: list[OutEvent] = []
    for out in outs:
        if not isinstance(out, (OutContent, OutReasoning)):
            kept.append(out)
            continue
        reasoning = isinstance(out, OutReasoning)
        keep = await cap.admit(out.text, reasoning=reasoning)
        if keep is None:
            kept.append(out)
            continue
        if keep:
            kept.append(OutReasoning(keep) if reasoning else OutContent(keep))
        kept.append(assembler.end_at(cap.chars(False), cap.chars(True)))
        break
    return kept


async def _with_usage(finish: OutFinish, prompt: str) -> OutFinish:
    usage = await count_usage(prompt, finish.content_text, finish.reasoning_text)
    return dataclasses.replace(finish, usage=usage)


async def _close(stream: AsyncIterator[object]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # closing a broken stream must not mask the real outcome
            log.debug("closing an upstream stream failed", exc_info=True)
