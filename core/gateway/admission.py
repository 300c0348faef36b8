"""Admission: which chain, targets and keys a request gets, and whether budgets hold it.

Everything here is policy read from the database and cached, so that a warm request is
admitted on the event loop without a query: per-caller facts (routes, key lookups,
limits, which budgets apply) for ``policy_ttl_s``; facts every caller shares
(endpoints with prices, ledger stats, comparison ratings) for ``refresh_s``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.accounts import keys
from core.accounts.secrets import Cipher
from core.clock import Clock
from core.compare import leaderboard
from core.errors import InvalidInput, NotFound
from core.gateway.chain import max_tokens_for
from core.gateway.lazysession import LazySession
from core.gateway.run import Candidate, Run, not_allowed
from core.money import orphans, pricing, ratelimits, reservations
from core.money.catalog import Catalog
from core.request import ChatRequest
from core.settings import endpoints, routes
from core.settings.routes import ResolvedRoute
from core.settings.targets import Target, TargetResolver
from core.store import db, ledger
from core.ttlcache import TtlCache
from core.upstream.params import ParamPlan, ParamPolicy


def trace_of(run: Run, provider: str | None, model: str | None) -> dict[str, Any]:
    """Who and what a request is, for an ``interrupted`` row should its outcome be lost."""
    request, caller = run.request, run.request.caller
    return {
        "at": run.at.isoformat(),
        "user_id": caller.user_id,
        "username": caller.username,
        "team_id": caller.team_id,
        "token_name": caller.token_name,
        "source": request.source,
        "task": request.task,
        "profile": request.profile,
        "conversation_id": request.conversation_id,
        "requested_model": request.model,
        "route_source": run.route.source,
        "chain": list(run.route.chain),
        "provider": provider,
        "model": model,
    }


@dataclass(frozen=True)
class Snapshot:
    resolver: TargetResolver
    book: pricing.PriceBook


class Admission:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        catalog: Catalog,
        cipher: Cipher,
        clock: Clock,
        environ: Mapping[str, str],
        policy_ttl_s: float,
        refresh_s: float,
        default_rpm: int | None,
        default_tpm: int | None,
        db_wait_s: float = 15.0,
    ) -> None:
        self._sessions = sessions
        self._db_wait_s = db_wait_s
        self._catalog = catalog
        self._cipher = cipher
        self._clock = clock
        self.environ = environ
        self._default_rpm = default_rpm
        self._default_tpm = default_tpm
        self._policy: TtlCache[Any] = TtlCache(policy_ttl_s)
        self._shared: TtlCache[Any] = TtlCache(refresh_s)
        self._params = ParamPolicy()

    def clear(self) -> None:
        """Forget every cached fact (after an admin changes endpoints, prices or routes)."""
        self._shared.clear()
        self._policy.clear()

    def admit(
        self,
        db: LazySession,
        request: ChatRequest,
        stream: bool,
        request_id: str,
        at: datetime,
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
            snap = self.snapshot(db)
            targets: list[Target] = []
            asked: Target | None = None  # the model the request names, if it names one
            unknown: list[str] = []
            for model in route.chain:
                try:
                    targets.append(snap.resolver.resolve(model))
                    if model == request.model:
                        asked = targets[-1]
                except NotFound:
                    # A route's stale fallback is skipped; the model asked for is an error.
                    if model == request.model or len(route.chain) == 1:
                        raise
                    unknown.append(model)
            if not targets:  # every model named is unknown: as for one, a 404 naming them
                raise NotFound(
                    f"No models named {', '.join(map(repr, unknown))}. GET /v1/models lists "
                    "the models you can use."
                )
            if route.options.cost_optimised and len(targets) > 1:
                route = self._reorder(db, route, targets, snap.book, at, request.task)
                by_id = {t.model_id: t for t in targets}
                targets = [by_id[m] for m in route.chain if m in by_id]
            drop = request.drop_params or route.options.drop_params
            plans = [self._plan(t, request, drop) for t in targets]
            if plans and plans[0].refused:
                raise _refusal(targets[0], plans[0].refused)
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
                    db.session(),
                    caller.user_id,
                    self._default_rpm,
                    self._default_tpm,
                ),
                wait=db.may_wait,
            )
        prompt = pricing.estimate_prompt_tokens(request.messages)
        prompt += pricing.estimate_text_tokens(definitions_text(request))
        counted = None
        if not limits.unlimited:
            db.require()  # counting is a database write; never on the loop
            ratelimits.check_and_count(
                self._sessions,
                caller,
                prompt,
                at,
                self._default_rpm,
                self._default_tpm,
                limits=limits,
            )
            counted = prompt
        candidates = [
            Candidate(t, found[t.provider], p.params, p.dropped, p.refused)
            for t, p in zip(targets, plans, strict=True)
        ]
        return Run(
            request,
            request_id,
            at,
            started,
            route,
            candidates,
            prompt,
            snap.book,
            stream,
            rate_counted=counted,
            drop_params=drop,
        )

    def _plan(self, target: Target, request: ChatRequest, drop: bool) -> ParamPlan:
        params = dict(request.params)
        if request.temperature is not None:  # the caller's own, checked like any field
            params["temperature"] = request.temperature
        endpoint = target.info is None and target.api_base is not None
        plan = self._params.plan(target.litellm_model, params, endpoint=endpoint, drop=drop)
        if request.temperature is not None and "temperature" in plan.params:
            # The chain sends the caller's temperature, or the route's default.
            kept = {k: v for k, v in plan.params.items() if k != "temperature"}
            plan = replace(plan, params=kept)
        return plan

    def snapshot(self, db: LazySession) -> Snapshot:
        """Which models exist (catalog plus endpoints) and their prices, shared by callers."""

        def load() -> Snapshot:
            session = db.session()
            resolver = TargetResolver(self._catalog, endpoints.list_endpoints(session))
            return Snapshot(
                resolver, pricing.load_price_book(session, self._catalog, self._clock())
            )

        snap: Snapshot = self._shared.get_or_load("snapshot", load, wait=db.may_wait)
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
            "stats",
            lambda: ledger.recent_stats(db.session(), at - timedelta(days=7)),
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

    async def reserve(self, run: Run, cand: Candidate) -> reservations.ReservationHandle:
        """Hold the candidate's worst-case cost on every budget that applies (often none)."""
        caller, provider = run.request.caller, cand.target.provider
        key = ("budgets", caller.user_id, caller.team_id, provider)
        known, applies = self._policy.peek(key)
        if known and not applies:
            return reservations.ReservationHandle(run.request_id, ())  # no thread hop, no query
        # Fail closed: no hold, no call. A database that is away refuses the request with
        # 503, bounded by the request's own total timeout as well as the database wait.
        remaining = run.started + run.route.options.total_timeout_s - time.monotonic()
        step = asyncio.ensure_future(asyncio.to_thread(self._reserve_sync, run, cand, key))
        try:
            return await asyncio.wait_for(
                asyncio.shield(step), max(0.1, min(self._db_wait_s, remaining))
            )
        except TimeoutError:
            step.add_done_callback(self._release_late)
            raise db.unavailable() from None
        except Exception as exc:
            if db.is_unavailable(exc):
                raise db.unavailable(exc) from None
            raise

    def _release_late(self, step: asyncio.Future[reservations.ReservationHandle]) -> None:
        """A hold that arrived after its request gave up: give it back at once."""
        if step.cancelled() or step.exception() is not None:
            return
        handle = step.result()
        if handle.holds:
            asyncio.get_running_loop().run_in_executor(
                None, reservations.release, self._sessions, handle, self._clock()
            )

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
        prompt = pricing.prompt_token_bound(
            run.request.messages,
            extra_text=run.sent + definitions_text(run.request),
            context_window=target.context_window,
        )
        worst = run.book.worst_case_micros(target.model_id, prompt, max_out, run.at)
        now = self._clock()
        orphans.expire_due(self._sessions, now)  # besides the sweep's own schedule
        return reservations.reserve(
            self._sessions,
            request_id=run.request_id,
            caller=caller,
            amounts={target.provider: worst},
            now=now,
            unpriced_models=(target.model_id,) if worst is None else (),
            trace=trace_of(run, target.provider, target.model_id),
        )


# Request fields the provider reads as part of the prompt, and bills as input tokens.
_PROMPT_FIELDS = ("tools", "tool_choice", "response_format")


def definitions_text(request: ChatRequest) -> str:
    """Tool definitions and schemas as sent upstream: prompt text a budget hold counts."""
    found = {k: request.params[k] for k in _PROMPT_FIELDS if request.params.get(k)}
    return json.dumps(found, separators=(",", ":"), default=str) if found else ""


def _refusal(target: Target, fields: tuple[str, ...]) -> InvalidInput:
    names = ", ".join(f"`{f}`" for f in fields)
    return InvalidInput(
        f"{target.model_id} does not take {names}. Remove "
        f"{'it' if len(fields) == 1 else 'them'}, choose a model that takes "
        f'{"it" if len(fields) == 1 else "them"}, or send `"drop_params": true` to leave '
        "out what a model does not take (the answer's x-switchboard-dropped-params header "
        "lists what was left out)."
    )
