"""One request through its chain: keys, breakers, budgets, retries, timeouts, failover.

The walk: admit (route, targets, keys, rate limit) -> for each candidate, reserve
its worst case and call it, retrying transient errors with backoff -> if a stream
breaks after text was sent, continue on the next model without repeating text ->
record the request and its attempts and settle the reservations in the ledger's
background writer. Pages, the API and the CLI all come through here.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core import budgets, endpoints, keys, ledger, pricing, ratelimits, routes
from core.breaker import Breakers, BreakerState
from core.catalog import Catalog
from core.chat import (
    STATUS_BUDGET,
    STATUS_FAILED,
    STATUS_FALLBACK,
    STATUS_NO_KEY,
    STATUS_PARTIAL,
    STATUS_RATE,
    STATUS_STOPPED,
    STATUS_SUCCESS,
    Attempt,
    ChatRequest,
    Completion,
    CostEstimate,
    Done,
    StreamEvent,
    Summary,
    TextDelta,
    Usage,
)
from core.clock import Clock, utc_now
from core.continuation import Diverged, PrefillJoin, PrefixMatcher, prefill_messages
from core.errors import (
    AllModelsFailed,
    BudgetExceeded,
    ContentRefused,
    ContextTooLong,
    InvalidInput,
    NoKey,
    NotFound,
    RateLimited,
    SwitchboardError,
    UpstreamTimeout,
)
from core.recorder import BatchWriter
from core.retry import RetryBudget, RetryPolicy
from core.routes import ResolvedRoute
from core.secrets import Cipher, redact
from core.targets import PLACEHOLDER_KEY, Target, TargetResolver
from core.upstream import (
    AUTH,
    CONTENT,
    CONTEXT,
    CUT,
    REJECTED,
    TIMEOUT,
    TRANSIENT,
    CompletionFn,
    Timeouts,
    Upstream,
    UpstreamError,
)

_TOKENS_IN_MESSAGE = re.compile(r"(\d[\d,]*)\s*tokens")


@dataclass(frozen=True)
class GatewaySettings:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker_threshold: int = 3
    breaker_cooldown_s: float = 15.0
    refresh_s: float = 30.0  # how long endpoints, prices and stats are reused
    default_rpm: int | None = None
    default_tpm: int | None = None


@dataclass(frozen=True)
class _Candidate:
    target: Target
    key: keys.ResolvedKey | None

    @property
    def deployment(self) -> str:
        # Never the secret: where the key came from and its row id are enough to tell keys apart.
        src = f"{self.key.source}:{self.key.key_id or '-'}" if self.key else "none"
        return f"{self.target.model_id}@{src}"


@dataclass
class _Run:
    """Mutable state of one request while it runs."""

    request: ChatRequest
    request_id: str
    at: datetime
    started: float
    route: ResolvedRoute
    candidates: list[_Candidate]
    prompt_tokens: int
    attempts: list[Attempt] = field(default_factory=list)
    sent: str = ""
    served: Target | None = None
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    ttft_ms: int | None = None
    cut: UpstreamError | None = None  # the first mid-stream failure: what a final error names
    error: SwitchboardError | None = None
    context_needed: int = 0
    holds: list[budgets.ReservationHandle] = field(default_factory=list)
    key_events: list[tuple[int, str]] = field(default_factory=list)
    stopped: bool = False


@dataclass(frozen=True)
class _Record:
    request: ChatRequest
    summary: Summary
    holds: tuple[budgets.ReservationHandle, ...]
    spend: Mapping[str, int]
    key_events: tuple[tuple[int, str], ...]
    at: datetime


class Gateway:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        catalog: Catalog,
        cipher: Cipher,
        completion: CompletionFn | None = None,
        clock: Clock = utc_now,
        sleep: Any = asyncio.sleep,
        rng: random.Random | None = None,
        environ: Mapping[str, str] | None = None,
        settings: GatewaySettings | None = None,
    ) -> None:
        self.settings = settings or GatewaySettings()
        self._sessions = sessions
        self._catalog = catalog
        self._cipher = cipher
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._environ = os.environ if environ is None else environ
        self._upstream = Upstream(completion)
        self.breakers = Breakers(
            self.settings.breaker_threshold,
            timedelta(seconds=self.settings.breaker_cooldown_s),
            clock,
        )
        self._retry_budget = RetryBudget()
        self._snapshot: tuple[float, TargetResolver, pricing.PriceBook] | None = None
        self._stats: tuple[float, dict[str, ledger.ModelStats]] | None = None
        self._writer: BatchWriter[_Record] = BatchWriter(sessions, self._write_records)

    # --- public -----------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """TextDelta events, then one Done whose summary says how it ended.

        Refusals before any work (bad model, rate limit) raise SwitchboardError.
        """
        run = await self._admit(request)
        try:
            async with aclosing(self._execute(run)) as texts:
                async for text in texts:
                    try:
                        yield TextDelta(text)
                    except BaseException:
                        # The caller left: mark it before the attempt below us closes.
                        run.stopped = True
                        raise
        except BaseException:
            run.stopped = True
            self._finish(run)
            raise
        yield Done(self._finish(run))

    async def complete(self, request: ChatRequest) -> Completion:
        """The whole answer at once; raises SwitchboardError when no model answered fully."""
        parts: list[str] = []
        summary: Summary | None = None
        async for event in self.stream(replace(request, stream=False)):
            if isinstance(event, TextDelta):
                parts.append(event.text)
            else:
                summary = event.summary
        assert summary is not None
        if summary.error is not None:
            raise summary.error
        return Completion("".join(parts), summary)

    def estimate(self, request: ChatRequest) -> CostEstimate:
        """Cost range before sending: a short answer on the cheapest candidate up to the max."""
        now = self._clock()
        with self._sessions() as session:
            route = routes.resolve(
                session,
                request.caller,
                model=request.model,
                fallbacks=request.fallbacks,
                task=request.task,
            )
            resolver, book = self._snapshot_for(session)
        prompt = pricing.estimate_prompt_tokens(request.messages)
        lows: list[int] = []
        highs: list[int] = []
        unpriced: list[str] = []
        for model in route.chain:
            try:
                target = resolver.resolve(model)
            except NotFound:
                continue
            max_out = self._max_tokens(request, route, target)
            low = book.worst_case_micros(target.model_id, prompt, min(max_out, 256), now)
            high = book.worst_case_micros(target.model_id, prompt, max_out, now)
            if low is None or high is None:
                unpriced.append(target.model_id)
                continue
            lows.append(low)
            highs.append(high)
        return CostEstimate(
            prompt, min(lows, default=None), max(highs, default=None), tuple(unpriced)
        )

    def breaker_states(self) -> list[BreakerState]:
        return self.breakers.states()

    def refresh(self) -> None:
        """Forget cached endpoints, prices and stats (after an admin changes them)."""
        self._snapshot = None
        self._stats = None

    def flush(self, timeout_s: float = 30.0) -> bool:
        return self._writer.flush(timeout_s)

    def close(self) -> None:
        """Write everything still queued; call on shutdown so no ledger row is lost."""
        self._writer.close()

    # --- admission --------------------------------------------------------------

    async def _admit(self, request: ChatRequest) -> _Run:
        if not request.messages:
            raise InvalidInput("`messages` is empty; send at least one message.")
        request_id = uuid.uuid4().hex
        at = self._clock()
        started = time.monotonic()
        try:
            return await asyncio.to_thread(self._admit_sync, request, request_id, at, started)
        except SwitchboardError as exc:
            status = STATUS_RATE if isinstance(exc, RateLimited) else STATUS_FAILED
            summary = Summary(
                request_id=request_id,
                requested_model=request.model,
                chain=(),
                route_source="none",
                status=status,
                attempts=(),
                error=exc,
            )
            self._writer.submit(_Record(request, summary, (), {}, (), at))
            raise

    def _admit_sync(
        self, request: ChatRequest, request_id: str, at: datetime, started: float
    ) -> _Run:
        caller = request.caller
        with self._sessions() as session:
            route = routes.resolve(
                session, caller, model=request.model, fallbacks=request.fallbacks, task=request.task
            )
            resolver, book = self._snapshot_for(session)
            targets: list[Target] = []
            for model in route.chain:
                try:
                    targets.append(resolver.resolve(model))
                except NotFound:
                    if model == request.model or len(route.chain) == 1:
                        raise
            if route.options.cost_optimised and len(targets) > 1:
                route = self._reorder(session, route, targets, book, at)
                by_id = {t.model_id: t for t in targets}
                targets = [by_id[m] for m in route.chain if m in by_id]
            found: dict[str, keys.ResolvedKey | None] = {}
            for provider in dict.fromkeys(t.provider for t in targets):
                found[provider] = keys.resolve_key(
                    session, self._cipher, caller, provider, self._environ
                )
        prompt = pricing.estimate_prompt_tokens(request.messages)
        ratelimits.check_and_count(
            self._sessions, caller, prompt, at, self.settings.default_rpm, self.settings.default_tpm
        )
        candidates = [_Candidate(t, found[t.provider]) for t in targets]
        return _Run(request, request_id, at, started, route, candidates, prompt)

    def _snapshot_for(self, session: Session) -> tuple[TargetResolver, pricing.PriceBook]:
        now = time.monotonic()
        snap = self._snapshot
        if snap is None or now - snap[0] > self.settings.refresh_s:
            specs = endpoints.list_endpoints(session)
            resolver = TargetResolver(self._catalog, specs)
            book = pricing.load_price_book(session, self._catalog, self._clock())
            snap = self._snapshot = (now, resolver, book)
        return snap[1], snap[2]

    def _reorder(
        self,
        session: Session,
        route: ResolvedRoute,
        targets: list[Target],
        book: pricing.PriceBook,
        at: datetime,
    ) -> ResolvedRoute:
        now = time.monotonic()
        if self._stats is None or now - self._stats[0] > self.settings.refresh_s:
            self._stats = (now, ledger.recent_stats(session, at - timedelta(days=7)))
        prices = {}
        for t in targets:
            price = book.price_at(t.model_id, at)
            prices[t.model_id] = (
                None if price is None else (3 * price.input_per_1m + price.output_per_1m) / 4
            )
        chain, reason = routes.order_by_score(
            [t.model_id for t in targets],
            weights=route.options.weights,
            prices=prices,
            stats=self._stats[1],
        )
        return replace(route, chain=chain, order_reason=reason)

    # --- execution --------------------------------------------------------------

    def _max_tokens(self, request: ChatRequest, route: ResolvedRoute, target: Target) -> int:
        # Always explicit upstream, so the reserved worst case is a true bound.
        return request.max_tokens or route.options.max_tokens or target.max_output_tokens

    def _timeouts(self, route: ResolvedRoute) -> Timeouts:
        o = route.options
        return Timeouts(
            o.connect_timeout_s, o.first_token_timeout_s, o.idle_timeout_s, o.total_timeout_s
        )

    async def _execute(self, run: _Run) -> AsyncGenerator[str, None]:
        options = run.route.options
        deadline = run.started + options.total_timeout_s
        for cand in run.candidates:
            if run.error is not None or run.stopped:
                return
            if time.monotonic() >= deadline:
                break
            if not await self._may_try(run, cand):
                continue
            prefill = bool(run.sent) and cand.target.supports_prefill
            retries = 0
            while True:
                failure: UpstreamError | None = None
                try:
                    async with aclosing(self._attempt(run, cand, prefill, deadline)) as texts:
                        async for text in texts:
                            yield text
                except UpstreamError as exc:
                    failure = exc
                except Diverged:
                    run.error = self._cut_error(
                        run, f"{cand.target.model_id} answered differently when asked again"
                    )
                    return
                if failure is None:
                    return  # answered
                if run.sent and prefill and failure.kind == REJECTED and not run.served:
                    prefill = False  # it refused the prefix: ask again without it
                    continue
                if run.sent:
                    run.cut = run.cut or failure
                    break  # text is out: continue on the next model, never retry this one
                if (
                    failure.kind == TRANSIENT
                    and retries < options.max_retries
                    and (self._retry_budget.spend(cand.deployment))
                ):
                    retries += 1
                    await self._sleep(
                        self.settings.retry.delay(retries, failure.retry_after_s, self._rng)
                    )
                    continue
                if failure.kind == CONTEXT:
                    run.context_needed = max(
                        run.context_needed, _tokens_in(failure.message) or run.prompt_tokens
                    )
                if failure.kind == CONTENT and not options.content_refusal_failover:
                    run.error = ContentRefused(
                        f"{cand.target.model_id} refused the request: {failure.message}"
                    )
                    return
                break
        run.error = run.error or self._final_error(run)

    async def _may_try(self, run: _Run, cand: _Candidate) -> bool:
        """Skip candidates that cannot work, recording why; reserve budget for the rest."""
        target = cand.target
        reason: str | None = None
        outcome = "skipped"
        window = target.context_window
        if target.key_required and cand.key is None:
            outcome, reason = "no-key", f"no key for {target.provider}"
        elif window is not None and max(run.context_needed, run.prompt_tokens) > window:
            outcome, reason = "skipped-context", f"prompt needs more than {window} tokens"
        elif not self.breakers.allow(cand.deployment):
            outcome, reason = "skipped-breaker", "circuit open after repeated failures"
        else:
            try:
                run.holds.append(await asyncio.to_thread(self._reserve, run, cand))
                return True
            except BudgetExceeded as exc:
                outcome, reason = "refused-budget", exc.message
                run.error = run.error if run.served else None
                self._budget_refusals(run).append(exc)
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

    def _budget_refusals(self, run: _Run) -> list[BudgetExceeded]:
        found: list[BudgetExceeded] = run.__dict__.setdefault("_budget", [])
        return found

    def _reserve(self, run: _Run, cand: _Candidate) -> budgets.ReservationHandle:
        book = self._snapshot_for_thread()
        target = cand.target
        max_out = self._max_tokens(run.request, run.route, target)
        prompt = run.prompt_tokens + len(run.sent) // 4 + 1
        worst = book.worst_case_micros(target.model_id, prompt, max_out, run.at)
        return budgets.reserve(
            self._sessions,
            request_id=run.request_id,
            caller=run.request.caller,
            amounts={target.provider: worst},
            now=self._clock(),
            unpriced_models=((target.model_id,) if worst is None else ()),
        )

    def _snapshot_for_thread(self) -> pricing.PriceBook:
        with self._sessions() as session:
            return self._snapshot_for(session)[1]

    async def _attempt(
        self, run: _Run, cand: _Candidate, prefill: bool, deadline: float
    ) -> AsyncGenerator[str, None]:
        """One upstream call; yields only text the caller does not have yet."""
        target = cand.target
        request = run.request
        messages = list(request.messages)
        matcher: PrefixMatcher | PrefillJoin | None = None
        if run.sent:
            if prefill:
                messages = prefill_messages(messages, run.sent)
                matcher = PrefillJoin(run.sent)
            else:
                matcher = PrefixMatcher(run.sent)
        params = dict(request.params)
        params["max_tokens"] = self._max_tokens(request, run.route, target)
        temperature = request.temperature
        if temperature is None:
            temperature = run.route.options.temperature
        if temperature is not None:
            params["temperature"] = temperature
        secret = cand.key.secret if cand.key else None
        api_key = secret or (PLACEHOLDER_KEY if target.api_base else None)
        timeouts = self._timeouts(run.route)
        started_at = self._clock()
        t0 = time.monotonic()
        first_ms: int | None = None
        text = ""
        usage: Usage | None = None
        finish: str | None = None
        error: UpstreamError | None = None
        self._retry_budget.earn(cand.deployment)
        try:
            if request.stream:
                pieces = self._upstream.stream(
                    target.litellm_model,
                    messages,
                    api_key=api_key,
                    api_base=target.api_base,
                    params=params,
                    timeouts=timeouts,
                    deadline=deadline,
                )
                async with aclosing(pieces) as stream:
                    async for piece in stream:
                        usage = piece.usage or usage
                        finish = piece.finish_reason or finish
                        if not piece.text:
                            continue
                        text += piece.text
                        out = matcher.feed(piece.text) if matcher else piece.text
                        if out:
                            if first_ms is None:
                                first_ms = _ms(t0)
                            if run.ttft_ms is None:
                                run.ttft_ms = _ms(run.started)
                            run.sent += out
                            yield out
                if isinstance(matcher, PrefixMatcher):
                    matcher.finish()
            else:
                text, finish, usage = await self._upstream.complete(
                    target.litellm_model,
                    messages,
                    api_key=api_key,
                    api_base=target.api_base,
                    params=params,
                    timeouts=timeouts,
                )
                first_ms = _ms(t0)
                run.ttft_ms = run.ttft_ms or _ms(run.started)
                run.sent += text
                yield text
        except UpstreamError as exc:
            error = exc
            raise
        except asyncio.CancelledError:
            error = UpstreamError(CUT, "the caller stopped the request", error_class="Stopped")
            raise
        finally:
            self._close_attempt(
                run, cand, messages, started_at, t0, first_ms, text, usage, finish, error
            )

    def _close_attempt(
        self,
        run: _Run,
        cand: _Candidate,
        messages: list[Any],
        started_at: datetime,
        t0: float,
        first_ms: int | None,
        text: str,
        usage: Usage | None,
        finish: str | None,
        error: UpstreamError | None,
    ) -> None:
        target = cand.target
        stopped = error is None and run.stopped
        if usage is None and (text or error is None):
            # No usage from a cut or stopped stream: bill an estimate rather than nothing.
            usage = Usage(pricing.estimate_prompt_tokens(messages), max(1, len(text) // 4))
        usage = usage or Usage()
        cost, version = self._cost(target, usage, run.at)
        if error is None and not run.stopped:
            self.breakers.record_success(cand.deployment)
            run.served, run.finish_reason = target, finish
            outcome = "ok"
        elif error is not None and error.kind in (REJECTED, CONTEXT, CONTENT):
            self.breakers.record_success(cand.deployment)  # it answered: the deployment is up
            outcome = "error"
        elif error is not None:
            self.breakers.record_failure(cand.deployment)
            outcome = {TIMEOUT: "timeout", CUT: "cut"}.get(error.kind, "error")
        else:
            self.breakers.release_probe(cand.deployment)
            outcome = "stopped"
        if cand.key and cand.key.key_id is not None:
            event = "auth-failed" if error is not None and error.kind == AUTH else "used"
            run.key_events.append((cand.key.key_id, event))
        secrets = [cand.key.secret] if cand.key else []
        run.usage = _add(run.usage, usage)
        run.attempts.append(
            Attempt(
                model=target.model_id,
                provider=target.provider,
                outcome=outcome,
                started_at=started_at,
                latency_ms=_ms(t0),
                ttft_ms=first_ms,
                key_source=cand.key.source if cand.key else "none",
                status_code=error.status if error else None,
                error_class=error.error_class if error else None,
                error_message=redact(error.message, secrets)[:2000] if error else None,
                usage=usage,
                cost_micros=cost,
                priced=cost is not None,
            )
        )
        del stopped, version

    def _cost(self, target: Target, usage: Usage, at: datetime) -> tuple[int | None, str | None]:
        assert self._snapshot is not None
        return self._snapshot[2].cost_micros(target.model_id, usage, at)

    # --- outcome ----------------------------------------------------------------

    def _cut_error(self, run: _Run, why: str) -> AllModelsFailed:
        cause = run.cut.message if run.cut else "the stream broke"
        return AllModelsFailed(
            f"The answer was cut off ({cause}) and could not be completed: {why}. "
            "The text received so far is incomplete."
        )

    def _final_error(self, run: _Run) -> SwitchboardError | None:
        if run.served is not None:
            return None
        if run.sent:
            return self._cut_error(run, "no other model could continue it")
        tried = [a for a in run.attempts if a.outcome not in ("no-key",)]
        refusals = self._budget_refusals(run)
        if not tried and run.attempts:
            providers = ", ".join(dict.fromkeys(a.provider for a in run.attempts))
            return NoKey(
                f"No API key for {providers}. Add one on the Providers & keys page, or ask an "
                f"admin to run `switchboard key set PROVIDER`."
            )
        if refusals and all(a.outcome in ("refused-budget", "no-key") for a in run.attempts):
            return refusals[0]
        if run.context_needed and all(
            a.outcome in ("skipped-context", "error", "no-key") for a in run.attempts
        ):
            windows = [c.target.context_window or 0 for c in run.candidates]
            return ContextTooLong(
                f"The prompt has about {run.context_needed} tokens, more than any model in the "
                f"chain accepts (largest: {max(windows)}). Shorten it or add a larger model."
            )
        called = [a for a in run.attempts if a.outcome in ("error", "timeout", "cut")]
        details = "; ".join(f"{a.model}: {a.error_message or a.outcome}" for a in run.attempts)
        if called and all(a.outcome == "timeout" for a in called):
            return UpstreamTimeout(f"Every model timed out. {details}")
        return AllModelsFailed(f"Every model in the chain failed. {details}")

    def _finish(self, run: _Run) -> Summary:
        if run.stopped and run.served is None:
            status = STATUS_STOPPED
        elif run.error is not None:
            status = STATUS_PARTIAL if run.sent else _failure_status(run)
        else:
            first = run.candidates[0].target.model_id if run.candidates else None
            fell_back = run.served is not None and (
                run.served.model_id != first or run.cut is not None
            )
            status = STATUS_FALLBACK if fell_back else STATUS_SUCCESS
        billed = [a for a in run.attempts if a.usage.total_tokens]
        cost: int | None = sum(a.cost_micros or 0 for a in billed)
        priced = all(a.priced for a in billed)
        if not priced:
            cost = None
        served = run.served
        version = self._price_version(served, run.at) if served else None
        summary = Summary(
            request_id=run.request_id,
            requested_model=run.request.model,
            chain=run.route.chain,
            route_source=run.route.source,
            status=status,
            attempts=tuple(run.attempts),
            model=served.model_id if served else None,
            provider=served.provider if served else None,
            usage=run.usage,
            cost_micros=cost,
            priced=priced,
            price_version=version,
            fallback_used=status == STATUS_FALLBACK or (run.cut is not None),
            finish_reason=run.finish_reason if run.error is None else None,
            latency_ms=_ms(run.started),
            ttft_ms=run.ttft_ms,
            order_reason=run.route.order_reason,
            error=run.error,
        )
        spend: dict[str, int] = {}
        for a in billed:
            spend[a.provider] = spend.get(a.provider, 0) + (a.cost_micros or 0)
        self._writer.submit(
            _Record(run.request, summary, tuple(run.holds), spend, tuple(run.key_events), run.at)
        )
        return summary

    def _price_version(self, target: Target, at: datetime) -> str | None:
        assert self._snapshot is not None
        price = self._snapshot[2].price_at(target.model_id, at)
        return price.version if price else None

    def _write_records(self, session: Session, records: list[_Record]) -> None:
        now = self._clock()
        ledger.record_many(session, [(r.request, r.summary) for r in records], now)
        for r in records:
            for handle in r.holds:
                if handle.holds:
                    budgets.settle_in(session, handle, r.spend, now)
            for key_id, event in r.key_events:
                if event == "used":
                    keys.mark_key_used(session, key_id, r.at)
                else:
                    keys.mark_key_auth_failed(session, key_id, r.at)


def _failure_status(run: _Run) -> str:
    if isinstance(run.error, NoKey):
        return STATUS_NO_KEY
    if isinstance(run.error, BudgetExceeded):
        return STATUS_BUDGET
    return STATUS_FAILED


def _tokens_in(message: str) -> int:
    counts = [int(m.replace(",", "")) for m in _TOKENS_IN_MESSAGE.findall(message)]
    return max(counts, default=0)


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(
        a.prompt_tokens + b.prompt_tokens,
        a.completion_tokens + b.completion_tokens,
        a.cached_tokens + b.cached_tokens,
        a.reasoning_tokens + b.reasoning_tokens,
    )


def _ms(since: float) -> int:
    return int((time.monotonic() - since) * 1000)
