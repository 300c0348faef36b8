"""Walking one request's chain of candidates: retries, failover and continuation.

For each candidate: skip it if it cannot work (no key, prompt too long, breaker
open, budget refused); call it; retry transient failures with backoff while the
retry budget allows; fail over on anything else. Once text has reached the
caller, a failure is never retried on the same model: the next candidate
continues the answer (with the partial answer as an assistant prefix where
supported, else by re-asking and passing on only what follows the text sent).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.accounts.secrets import redact
from core.clock import Clock
from core.errors import BudgetExceeded, ContentRefused, InvalidInput
from core.gateway.continuation import Diverged, PrefillJoin, PrefixMatcher, prefill_messages
from core.gateway.retry import RetryPolicy
from core.gateway.run import (
    Candidate,
    Run,
    add_usage,
    cut_error,
    final_error,
    ms_since,
    serving_now,
    tokens_in,
)
from core.gateway.toolcalls import ToolCallAssembler, joined_thinking
from core.money.pricing import estimate_prompt_tokens
from core.money.reservations import ReservationHandle
from core.request import Attempt, ChatRequest, Message, TextDelta, Usage
from core.settings.routes import ResolvedRoute
from core.settings.targets import PLACEHOLDER_KEY, Target
from core.upstream.breaker import Breakers
from core.upstream.calls import (
    AUTH,
    CONTENT,
    CONTEXT,
    CUT,
    INVALID,
    REJECTED,
    TIMEOUT,
    TRANSIENT,
    Piece,
    Timeouts,
    Upstream,
    UpstreamError,
    counts_against_provider,
)

Reserve = Callable[[Run, Candidate], Awaitable[ReservationHandle]]
Sleep = Callable[[float], Awaitable[None]]


def max_tokens_for(request: ChatRequest, route: ResolvedRoute, target: Target) -> int:
    """Always explicit upstream, so the reserved worst case is a true bound."""
    return request.max_tokens or route.options.max_tokens or target.max_output_tokens


def timeouts_for(route: ResolvedRoute) -> Timeouts:
    o = route.options
    return Timeouts(
        o.connect_timeout_s, o.first_token_timeout_s, o.idle_timeout_s, o.total_timeout_s
    )


@dataclass
class _Call:
    """What one upstream call produced, filled in as it goes."""

    messages: list[Message]
    started_at: datetime
    t0: float = field(default_factory=time.monotonic)
    first_ms: int | None = None
    text: str = ""
    reasoning: str = ""
    tools: ToolCallAssembler = field(default_factory=ToolCallAssembler)
    thinking: list[Mapping[str, Any]] = field(default_factory=list)  # block pieces
    usage: Usage | None = None
    finish: str | None = None
    model: str | None = None  # the name the provider reported
    error: UpstreamError | None = None
    stopped: bool = False  # the caller cancelled it: no verdict on the provider

    def take(self, piece: Piece) -> None:
        """Keep what a piece says about the call besides its text."""
        self.usage = piece.usage or self.usage
        self.finish = piece.finish_reason or self.finish
        self.model = piece.model or self.model
        self.reasoning += piece.reasoning
        self.tools.feed(piece.tool_calls)
        self.thinking += piece.thinking_blocks


class ChainWalker:
    def __init__(
        self,
        *,
        upstream: Upstream,
        breakers: Breakers,
        retry: RetryPolicy,
        reserve: Reserve,
        clock: Clock,
        sleep: Sleep,
        rng: random.Random,
    ) -> None:
        self._upstream = upstream
        self._breakers = breakers
        self._retry = retry
        self._reserve = reserve
        self._clock = clock
        self._sleep = sleep
        self._rng = rng

    async def walk(self, run: Run) -> AsyncGenerator[TextDelta, None]:
        """Yield the answer's pieces; on failure leave the reason in ``run.error``."""
        options = run.route.options
        deadline = run.started + options.total_timeout_s
        for cand in run.candidates:
            if run.error is not None or run.stopped or time.monotonic() >= deadline:
                break
            if not await self._may_try(run, cand):
                continue
            prefill = bool(run.sent) and cand.target.supports_prefill
            retries = 0
            while True:
                try:
                    async with aclosing(self._call(run, cand, prefill, deadline)) as pieces:
                        async for piece in pieces:
                            yield piece
                    return  # answered
                except Diverged:
                    run.error = cut_error(
                        run, f"{cand.target.model_id} answered differently when asked again"
                    )
                    return
                except UpstreamError as failure:
                    if run.sent and prefill and failure.kind in (REJECTED, INVALID):
                        prefill = False  # it refused the prefix: ask again without it
                        continue
                    if failure.kind == INVALID:
                        # The request itself is wrong: no other model or retry would help.
                        run.error = InvalidInput(
                            f"{cand.target.model_id} cannot take this request: "
                            f"{failure.message}. Nothing was sent to any model."
                        )
                        return
                    if run.emitted:
                        run.cut = run.cut or failure
                        break  # output is out: the next model continues; never retry this one
                    if (
                        failure.kind == TRANSIENT
                        and retries < options.max_retries
                        # An open breaker is the retry budget: a deployment failing nearly
                        # every call gets no retries, a partly failing one gets them all.
                        # Last, as half-open it claims a probe slot the retry then uses.
                        and self._breakers.allow(cand.deployment)
                    ):
                        retries += 1
                        await self._sleep(
                            self._retry.delay(retries, failure.retry_after_s, self._rng)
                        )
                        continue
                    if failure.kind == CONTEXT:
                        needed = tokens_in(failure.message) or run.prompt_tokens
                        run.context_needed = max(run.context_needed, needed)
                    if failure.kind == CONTENT and not options.content_refusal_failover:
                        run.error = ContentRefused(
                            f"{cand.target.model_id} refused the request: {failure.message}"
                        )
                        return
                    break
        run.error = run.error or final_error(run)

    async def _may_try(self, run: Run, cand: Candidate) -> bool:
        """Skip candidates that cannot work, recording why; reserve budget for the rest."""
        target = cand.target
        window = target.context_window
        if target.key_required and cand.key is None:
            outcome, reason = "no-key", f"no key for {target.provider}"
        elif cand.refused:
            outcome = "skipped-params"
            reason = f"does not take {', '.join(cand.refused)} (send drop_params to drop them)"
        elif window is not None and max(run.context_needed, run.prompt_tokens) > window:
            outcome, reason = "skipped-context", f"prompt needs more than {window} tokens"
        elif not self._breakers.allow(cand.deployment):
            outcome, reason = "skipped-breaker", "circuit open: nearly all its recent calls failed"
        else:
            try:
                run.holds.append(await self._reserve(run, cand))
                return True
            except BudgetExceeded as exc:
                self._breakers.release(cand.deployment)
                outcome, reason = "refused-budget", exc.message
                run.budget_refusals.append(exc)
            except BaseException:
                self._breakers.release(cand.deployment)  # never strand a probe slot
                raise
        run.attempts.append(
            Attempt(
                model=target.model_id,
                provider=target.provider,
                outcome=outcome,
                started_at=self._clock(),
                key_source=cand.key.source if cand.key else "none",
                error_message=reason,
            )
        )
        return False

    async def _call(
        self, run: Run, cand: Candidate, prefill: bool, deadline: float
    ) -> AsyncGenerator[TextDelta, None]:
        """One upstream call; yields only what the caller does not have yet.

        Text and reasoning go out as they come; tool calls are held until the upstream
        has finished (core/gateway/toolcalls.py), so a cut never hands out half a call.
        """
        target, request = cand.target, run.request
        call = _Call(list(request.messages), self._clock())
        matcher: PrefixMatcher | PrefillJoin | None = None
        if run.sent and prefill:
            call.messages = prefill_messages(call.messages, run.sent)
            matcher = PrefillJoin(run.sent)
        elif run.sent:
            matcher = PrefixMatcher(run.sent)
        params: dict[str, Any] = dict(cand.params)
        params["max_tokens"] = max_tokens_for(request, run.route, target)
        temperature = request.temperature
        if temperature is None:
            temperature = run.route.options.temperature
        if temperature is not None and "temperature" not in cand.dropped:
            params["temperature"] = temperature
        if run.drop_params:
            params["drop_params"] = True  # litellm's own value checks drop, not refuse
        secret = cand.key.secret if cand.key else None
        api_key = secret or (PLACEHOLDER_KEY if target.api_base else None)
        timeouts = timeouts_for(run.route)
        run.dropped.update(cand.dropped)
        try:
            if run.stream:
                pieces = self._upstream.stream(
                    target.litellm_model,
                    call.messages,
                    api_key=api_key,
                    api_base=target.api_base,
                    params=params,
                    timeouts=timeouts,
                    deadline=deadline,
                )
                async with aclosing(pieces) as stream:
                    async for piece in stream:
                        call.take(piece)
                        out = self._out(run, cand, call, piece, matcher)
                        if out is not None:
                            yield out
                if isinstance(matcher, PrefixMatcher):
                    matcher.finish()
            else:
                whole = await self._upstream.complete(
                    target.litellm_model,
                    call.messages,
                    api_key=api_key,
                    api_base=target.api_base,
                    params=params,
                    timeouts=timeouts,
                    deadline=deadline,
                )
                call.take(whole)
                self._mark_first_text(run, cand, call)  # a whole answer's first token
                out = self._out(run, cand, call, whole, None)
                if out is not None:
                    yield out
            if call.tools or call.thinking:  # finished: the turn's calls go out whole
                self._mark_first_text(run, cand, call)
                run.emitted = True
                blocks = joined_thinking(call.thinking)
                yield TextDelta("", tool_calls=call.tools.calls(), thinking_blocks=blocks)
        except UpstreamError as exc:
            call.error = exc
            raise
        except asyncio.CancelledError:
            # The caller stopped (Chat's Stop button cancels the task): not the provider's
            # failure. Our own timeouts arrive as UpstreamError, never as a cancellation.
            call.stopped = run.stopped = True
            raise
        finally:
            self._record_call(run, cand, call)

    def _out(
        self,
        run: Run,
        cand: Candidate,
        call: _Call,
        piece: Piece,
        matcher: PrefixMatcher | PrefillJoin | None,
    ) -> TextDelta | None:
        """The part of a piece the caller gets now: its text (past what was sent) and
        its reasoning. Tool-call fragments stay in ``call.tools`` until the end."""
        call.text += piece.text
        text = matcher.feed(piece.text) if matcher and piece.text else piece.text
        if not text and not piece.reasoning:
            return None
        self._mark_first_text(run, cand, call)
        run.sent += text
        run.emitted = True
        return TextDelta(text, reasoning=piece.reasoning)

    @staticmethod
    def _mark_first_text(run: Run, cand: Candidate, call: _Call) -> None:
        if call.first_ms is None:
            call.first_ms = ms_since(call.t0)
            # Once per call that reaches the caller: the first model, or a continuation.
            run.serving = serving_now(run, cand, call.first_ms, call.model)
        if run.ttft_ms is None:
            run.ttft_ms = ms_since(run.started)

    def _record_call(self, run: Run, cand: Candidate, call: _Call) -> None:
        target, error = cand.target, call.error
        usage = call.usage
        produced = len(call.text) + len(call.reasoning) + call.tools.chars
        if usage is None and (produced or error is None):
            # No usage from a cut or stopped stream: bill an estimate rather than nothing
            # (reasoning and a cut call's arguments were generated, and are billed, too).
            usage = Usage(estimate_prompt_tokens(call.messages), max(1, produced // 4))
        usage = usage or Usage()
        cost, price_version = run.book.cost_micros(target.model_id, usage, run.at)
        if error is None and not call.stopped and not run.stopped:
            self._breakers.record_success(cand.deployment)
            run.served, run.finish_reason = target, call.finish
            run.reported_model = call.model
            outcome = "ok"
        elif error is not None and counts_against_provider(error):
            self._breakers.record_failure(cand.deployment)
            outcome = {TIMEOUT: "timeout", CUT: "cut"}.get(error.kind, "error")
        else:
            # The request's own fault (rejected, too long, refused, invalid) or the
            # caller's stop: no verdict on the deployment, so no count either way.
            self._breakers.release(cand.deployment)
            outcome = "error" if error is not None else "stopped"
        if cand.key and cand.key.key_id is not None:
            event = "auth-failed" if error is not None and error.kind == AUTH else "used"
            run.key_events.append((cand.key.key_id, event))
        secrets = [cand.key.secret] if cand.key else []
        run.usage = add_usage(run.usage, usage)
        run.attempts.append(
            Attempt(
                model=target.model_id,
                provider=target.provider,
                outcome=outcome,
                started_at=call.started_at,
                latency_ms=ms_since(call.t0),
                ttft_ms=call.first_ms,
                key_source=cand.key.source if cand.key else "none",
                status_code=error.status if error else None,
                error_class=error.error_class if error else None,
                error_message=redact(error.message, secrets)[:2000] if error else None,
                usage=usage,
                cost_micros=cost,
                priced=cost is not None,
                price_version=price_version,
            )
        )
