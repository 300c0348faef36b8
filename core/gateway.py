"""The one way a prompt reaches a model: pages, the /v1 API and the CLI all come here.

The walk: admit (route, targets, keys, rate limit) -> walk the chain (core.chain:
reserve each candidate's worst case, call it, retry, fail over, continue a broken
stream) -> summarise (core.run) -> hand the ledger rows and budget settlement to a
batched background writer, so no request waits on those writes.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core import endpoints, keys, leaderboard, ledger, pricing, ratelimits, reservations, routes
from core.breaker import Breakers, BreakerState
from core.catalog import Catalog
from core.chain import ChainWalker, max_tokens_for
from core.chat import (
    STATUS_FAILED,
    STATUS_NO_KEY,
    STATUS_RATE,
    ChatRequest,
    Completion,
    CostEstimate,
    Done,
    RequestIds,
    Serving,
    StreamEvent,
    Summary,
    TextDelta,
)
from core.clock import Clock, utc_now
from core.errors import InvalidInput, ModelNotAllowed, NotFound, RateLimited, SwitchboardError
from core.lazysession import LazySession, NeedsDatabase
from core.litellm_calls import CompletionFn
from core.recorder import BatchWriter
from core.retry import RetryPolicy
from core.routes import ResolvedRoute
from core.run import Candidate, Run, not_allowed, spend_by_provider, summarise
from core.secrets import Cipher
from core.targets import Target, TargetResolver
from core.ttlcache import TtlCache
from core.upstream import Upstream


@dataclass(frozen=True)
class GatewaySettings:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker_threshold: int = 3
    breaker_cooldown_s: float = 15.0
    refresh_s: float = 30.0  # how long endpoints, prices and stats are reused
    # How long per-caller policy (routes, key lookups, limits, which budgets apply) is
    # reused. Another replica's change takes at most this long to apply here.
    policy_ttl_s: float = 2.0
    default_rpm: int | None = None
    default_tpm: int | None = None


@dataclass(frozen=True)
class _Record:
    """What the background writer stores for one request, in one transaction per batch."""

    request: ChatRequest
    summary: Summary
    holds: tuple[reservations.ReservationHandle, ...]
    key_events: tuple[tuple[int, str], ...]
    at: datetime
    rate_correction: int = 0  # actual tokens minus those a per-minute limit counted


def _refusal_status(exc: SwitchboardError) -> str:
    if isinstance(exc, RateLimited):
        return STATUS_RATE
    # Not allowed means no key for it: filed where the no-key alerts and charts look.
    return STATUS_NO_KEY if isinstance(exc, ModelNotAllowed) else STATUS_FAILED


@dataclass(frozen=True)
class _Snapshot:
    resolver: TargetResolver
    book: pricing.PriceBook


class Gateway:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        catalog: Catalog,
        cipher: Cipher,
        completion: CompletionFn | None = None,
        clock: Clock = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        environ: Mapping[str, str] | None = None,
        settings: GatewaySettings | None = None,
    ) -> None:
        self.settings = settings or GatewaySettings()
        self._sessions = sessions
        self._catalog = catalog
        self._cipher = cipher
        self._clock = clock
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.breakers = Breakers(
            self.settings.breaker_threshold,
            timedelta(seconds=self.settings.breaker_cooldown_s),
            clock,
        )
        self._upstream = Upstream(completion)
        self._walker = ChainWalker(
            upstream=self._upstream,
            breakers=self.breakers,
            retry=self.settings.retry,
            reserve=self._reserve,
            clock=clock,
            sleep=sleep,
            rng=rng or random.Random(),
        )
        self._policy: TtlCache[Any] = TtlCache(self.settings.policy_ttl_s)
        # Endpoints with prices, ledger stats and comparison ratings: shared by every caller.
        self._shared: TtlCache[Any] = TtlCache(self.settings.refresh_s)
        self._ids = RequestIds()
        self._writer: BatchWriter[_Record] = BatchWriter(sessions, self._write_records)

    # --- public -----------------------------------------------------------------

    def stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        """TextDelta events, then one Done whose summary says how it ended.

        The first delta from each model that answers carries ``serving``: the model, and
        the attempts before it (a mid-stream continuation brings a second one).

        Refusals before any work (bad input, unknown model, rate limit) raise
        SwitchboardError; everything after that ends in Done, with summary.error set
        when no model answered or a cut answer could not be completed.
        """
        return self._events(request, stream=request.stream)

    async def complete(self, request: ChatRequest) -> Completion:
        """The whole answer at once; raises SwitchboardError when no model answered fully."""
        parts: list[str] = []
        summary: Summary | None = None
        async for event in self._events(request, stream=False):
            if isinstance(event, TextDelta):
                parts.append(event.text)
            else:
                summary = event.summary
        assert summary is not None
        if summary.error is not None:
            raise summary.error
        return Completion("".join(parts), summary)

    async def _events(
        self, request: ChatRequest, *, stream: bool
    ) -> AsyncGenerator[StreamEvent, None]:
        # Before admission starts the request's clock: a first call's import of litellm
        # (seconds) must not eat a short total timeout or be billed to its attempt.
        self._upstream.load()
        run = await self._admit(request, stream)
        announced: Serving | None = None
        try:
            async with aclosing(self._walker.walk(run)) as texts:
                async for text in texts:
                    # The walker sets run.serving before a new model's first text.
                    serving = run.serving if run.serving is not announced else None
                    announced = run.serving
                    try:
                        yield TextDelta(text, serving)
                    except BaseException:
                        # The caller left: mark it before the attempt below us closes.
                        run.stopped = True
                        raise
        except BaseException:
            run.stopped = True
            self._finish(run)
            raise
        yield Done(self._finish(run))

    def estimate(self, request: ChatRequest) -> CostEstimate:
        """Cost range before sending: a short answer on the cheapest candidate up to the max."""
        now = self._clock()
        with LazySession(self._sessions) as db:
            route = routes.resolve(
                db.session(),
                request.caller,
                model=request.model,
                fallbacks=request.fallbacks,
                task=request.task,
                profile=request.profile,
            )
            snap = self._snapshot_for(db)
        prompt = pricing.estimate_prompt_tokens(request.messages)
        lows: list[int] = []
        highs: list[int] = []
        unpriced: list[str] = []
        for model in route.chain:
            try:
                target = snap.resolver.resolve(model)
            except NotFound:
                continue
            max_out = max_tokens_for(request, route, target)
            low = snap.book.worst_case_micros(target.model_id, prompt, min(max_out, 256), now)
            high = snap.book.worst_case_micros(target.model_id, prompt, max_out, now)
            if low is None or high is None:
                unpriced.append(target.model_id)
                continue
            lows.append(low)
            highs.append(high)
        return CostEstimate(
            prompt, min(lows, default=None), max(highs, default=None), tuple(unpriced)
        )

    def resolver(self) -> TargetResolver:
        """Which models exist right now (catalog plus admin endpoints)."""
        with LazySession(self._sessions) as db:  # no session at all while the snapshot is fresh
            return self._snapshot_for(db).resolver

    def breaker_states(self) -> list[BreakerState]:
        return self.breakers.states()

    def refresh(self) -> None:
        """Forget cached endpoints, prices and stats (after an admin changes them)."""
        self._shared.clear()
        self._policy.clear()

    def flush(self, timeout_s: float = 30.0) -> bool:
        return self._writer.flush(timeout_s)

    def close(self) -> None:
        """Write everything still queued; call on shutdown so no ledger row is lost."""
        self._writer.close()

    async def aclose(self) -> None:
        """Close the upstream HTTP clients of the running loop; call before that loop ends."""
        await self._upstream.aclose()

    # --- admission --------------------------------------------------------------

    async def _admit(self, request: ChatRequest, stream: bool) -> Run:
        if not request.messages:
            raise InvalidInput("`messages` is empty; send at least one message.")
        request_id = request.request_id or self._ids.new()
        at = self._clock()
        started = time.monotonic()
        try:
            try:
                # Usually every fact is cached: admit on the loop, no thread hop.
                return self._admit_with(LazySession(None), request, stream, request_id, at, started)
            except NeedsDatabase:
                return await asyncio.to_thread(
                    self._admit_with, LazySession(self._sessions), request, stream, request_id, at,
                    started,
                )
        except SwitchboardError as exc:
            # Refused before any upstream call: still one ledger row, so nothing goes missing.
            status = _refusal_status(exc)
            summary = Summary(
                request_id=request_id,
                requested_model=request.model,
                chain=(),
                route_source="none",
                status=status,
                attempts=(),
                error=exc,
            )
            self._writer.submit(_Record(request, summary, (), (), at))
            raise

    def _admit_with(
        self, db: LazySession, request: ChatRequest, stream: bool, request_id: str, at: datetime,
        started: float,
    ) -> Run:
        """Route, targets, keys and rate limit; ``db`` opens a session only on a cache miss."""
        caller = request.caller
        with db:
            route = self._policy.get_or_load(
                (
                    "route",
                    caller.user_id,
                    caller.team_id,
                    request.model,
                    request.fallbacks,
                    request.task,
                    request.profile,
                ),
                lambda: routes.resolve(
                    db.session(),
                    caller,
                    model=request.model,
                    fallbacks=request.fallbacks,
                    task=request.task,
                    profile=request.profile,
                ),
                wait=db.may_wait,
            )
            snap = self._snapshot_for(db)
            targets: list[Target] = []
            asked: Target | None = None  # the model the request names, if it names one
            for model in route.chain:
                try:
                    targets.append(snap.resolver.resolve(model))
                    if model == request.model:
                        asked = targets[-1]
                except NotFound:
                    # A route's stale fallback is skipped; the model asked for is an error.
                    if model == request.model or len(route.chain) == 1:
                        raise
            if route.options.cost_optimised and len(targets) > 1:
                route = self._reorder(db, route, targets, snap.book, at, request.task)
                by_id = {t.model_id: t for t in targets}
                targets = [by_id[m] for m in route.chain if m in by_id]
            sources = request.key_sources or route.key_sources
            found = {
                provider: self._policy.get_or_load(
                    ("key", caller.user_id, caller.team_id, provider, sources),
                    lambda p=provider: keys.resolve_key(  # type: ignore[misc]
                        db.session(), self._cipher, caller, p, self.environ, sources
                    ),
                    wait=db.may_wait,
                )
                for provider in dict.fromkeys(t.provider for t in targets)
            }
            if request.strict_model and asked and asked.key_required and not found[asked.provider]:
                raise not_allowed(asked, route.profile)  # before counting it against a limit
            limits = self._policy.get_or_load(
                ("limits", caller.user_id),
                lambda: ratelimits.effective_limits(
                    db.session(), caller.user_id, self.settings.default_rpm,
                    self.settings.default_tpm,
                ),
                wait=db.may_wait,
            )
        prompt = pricing.estimate_prompt_tokens(request.messages)
        counted = None
        if not limits.unlimited:
            db.require()  # counting is a database write; never on the loop
            ratelimits.check_and_count(
                self._sessions,
                caller,
                prompt,
                at,
                self.settings.default_rpm,
                self.settings.default_tpm,
                limits=limits,
            )
            counted = prompt
        candidates = [Candidate(t, found[t.provider]) for t in targets]
        return Run(
            request, request_id, at, started, route, candidates, prompt, snap.book, stream,
            rate_counted=counted,
        )

    def _snapshot_for(self, db: LazySession) -> _Snapshot:
        def load() -> _Snapshot:
            session = db.session()
            resolver = TargetResolver(self._catalog, endpoints.list_endpoints(session))
            return _Snapshot(resolver, pricing.load_price_book(session, self._catalog,
                                                               self._clock()))

        snap: _Snapshot = self._shared.get_or_load("snapshot", load, wait=db.may_wait)
        return snap

    def _ratings_for(self, db: LazySession, task: str) -> dict[str, float]:
        """Team votes from comparisons: the task's ratings when it has any, else overall."""
        task = task.strip().lower()
        for key in dict.fromkeys((task, "")):
            scores: dict[str, float] = self._shared.get_or_load(
                ("ratings", key),
                lambda k=key: leaderboard.quality_scores(  # type: ignore[misc]
                    db.session(), task=k or None
                ),
                wait=db.may_wait,
            )
            if scores:
                return scores
        return {}

    def _reorder(
        self,
        db: LazySession,
        route: ResolvedRoute,
        targets: list[Target],
        book: pricing.PriceBook,
        at: datetime,
        task: str = "",
    ) -> ResolvedRoute:
        stats: dict[str, ledger.ModelStats] = self._shared.get_or_load(
            "stats", lambda: ledger.recent_stats(db.session(), at - timedelta(days=7)),
            wait=db.may_wait,
        )
        prices = {}
        for t in targets:
            price = book.price_at(t.model_id, at)
            # Blended as most chat traffic is: three input tokens for every output token.
            prices[t.model_id] = (
                None if price is None else (3 * price.input_per_1m + price.output_per_1m) / 4
            )
        chain, reason = routes.order_by_score(
            [t.model_id for t in targets],
            weights=route.options.weights,
            prices=prices,
            stats=stats,
            ratings=self._ratings_for(db, task),
            preference=route.options.preference_for([t.model_id for t in targets]),
        )
        return replace(route, chain=chain, order_reason=reason)

    async def _reserve(self, run: Run, cand: Candidate) -> reservations.ReservationHandle:
        caller, provider = run.request.caller, cand.target.provider
        key = ("budgets", caller.user_id, caller.team_id, provider)
        known, applies = self._policy.peek(key)
        if known and not applies:
            return reservations.ReservationHandle(run.request_id, ())  # no thread hop, no query
        return await asyncio.to_thread(self._reserve_sync, run, cand, key)

    def _reserve_sync(
        self, run: Run, cand: Candidate, key: tuple[object, ...]
    ) -> reservations.ReservationHandle:
        target, caller = cand.target, run.request.caller

        def load() -> bool:
            with self._sessions() as session:
                return reservations.any_apply(session, caller, (target.provider,))

        if not self._policy.get_or_load(key, load):
            return reservations.ReservationHandle(run.request_id, ())
        max_out = max_tokens_for(run.request, run.route, target)
        # A hold must bound the real count, which the 4-characters estimate does not (CJK
        # text, images). A prompt over the model's window is refused upstream, costing nothing.
        prompt = pricing.prompt_token_bound(run.request.messages, extra_text=run.sent,
                                            context_window=target.context_window)
        worst = run.book.worst_case_micros(target.model_id, prompt, max_out, run.at)
        return reservations.reserve(
            self._sessions,
            request_id=run.request_id,
            caller=caller,
            amounts={target.provider: worst},
            now=self._clock(),
            unpriced_models=(target.model_id,) if worst is None else (),
        )

    # --- recording --------------------------------------------------------------

    def _finish(self, run: Run) -> Summary:
        summary = summarise(run)
        correction = 0
        if run.rate_counted is not None:
            # Admission counted the prompt's estimate; the minute gets what was really used.
            correction = summary.usage.total_tokens - run.rate_counted
        self._writer.submit(
            _Record(run.request, summary, tuple(run.holds), tuple(run.key_events), run.at,
                    correction)
        )
        return summary

    def _write_records(self, session: Session, records: list[_Record]) -> None:
        now = self._clock()
        ledger.record_many(session, [(r.request, r.summary) for r in records], now)
        for r in records:
            spend = spend_by_provider(r.summary)
            for handle in r.holds:
                if handle.holds:
                    reservations.settle_in(session, handle, spend, now)
            if r.rate_correction:
                ratelimits.correct_tokens(
                    session, r.request.caller.user_id, r.at, r.rate_correction
                )
            for key_id, event in r.key_events:
                if event == "used":
                    keys.mark_key_used(session, key_id, r.at)
                else:
                    keys.mark_key_auth_failed(session, key_id, r.at)
