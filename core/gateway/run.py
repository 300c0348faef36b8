"""The state of one request while the gateway works on it, and how it ends.

``Run`` is mutable and private to one request; ``summarise`` turns it into the
immutable ``Summary`` that the ledger records and the caller receives.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.accounts.keys import ResolvedKey
from core.errors import (
    AllModelsFailed,
    BudgetExceeded,
    ContextTooLong,
    ModelNotAllowed,
    NoKey,
    SwitchboardError,
    UpstreamTimeout,
)
from core.money.pricing import PriceBook
from core.money.reservations import ReservationHandle
from core.request import (
    STATUS_BUDGET,
    STATUS_FAILED,
    STATUS_FALLBACK,
    STATUS_NO_KEY,
    STATUS_PARTIAL,
    STATUS_STOPPED,
    STATUS_SUCCESS,
    Attempt,
    ChatRequest,
    Serving,
    Summary,
    Usage,
)
from core.settings.routes import ResolvedRoute
from core.settings.targets import Target
from core.upstream.calls import UpstreamError

_TOKENS_IN_MESSAGE = re.compile(r"(\d[\d,]*)\s*tokens")


@dataclass(frozen=True)
class Candidate:
    target: Target
    key: ResolvedKey | None
    # The request's params as this model takes them (core/upstream/params.py): fields
    # it does not take are dropped when asked, else refused, and then it is skipped.
    params: Mapping[str, Any] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()

    @property
    def deployment(self) -> str:
        """Breaker identity: model plus which key (by source and row id, never the secret)."""
        src = f"{self.key.source}:{self.key.key_id or '-'}" if self.key else "none"
        return f"{self.target.model_id}@{src}"


@dataclass
class Run:
    request: ChatRequest
    request_id: str
    at: datetime
    started: float  # time.monotonic()
    route: ResolvedRoute
    candidates: list[Candidate]
    prompt_tokens: int
    book: PriceBook  # prices as of admission, so one request is priced consistently
    stream: bool = True  # False: ask upstream for the whole answer at once
    attempts: list[Attempt] = field(default_factory=list)
    sent: str = ""  # text the caller has received
    emitted: bool = False  # anything (text, reasoning, tool calls) reached the caller
    drop_params: bool = False  # the caller or the route asked to drop what a model won't take
    dropped: set[str] = field(default_factory=set)  # fields dropped for the models called
    reported_model: str | None = None  # the name the answering provider gave its model
    serving: Serving | None = None  # the model whose text the caller is receiving
    served: Target | None = None
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    ttft_ms: int | None = None
    cut: UpstreamError | None = None  # the first mid-stream failure: what a final error names
    error: SwitchboardError | None = None
    context_needed: int = 0
    holds: list[ReservationHandle] = field(default_factory=list)
    budget_refusals: list[BudgetExceeded] = field(default_factory=list)
    key_events: list[tuple[int, str]] = field(default_factory=list)
    stopped: bool = False
    rate_counted: int | None = None  # tokens a per-minute limit counted at admission


def run_secrets(run: Run) -> list[str]:
    """Every secret this request may use: its candidates' keys and the caller's token."""
    keys = [c.key.secret for c in run.candidates if c.key is not None]
    return [*keys, *run.request.scrub]


def cut_error(run: Run, why: str) -> AllModelsFailed:
    cause = run.cut.message if run.cut else "the stream broke"
    return AllModelsFailed(
        f"The answer was cut off ({cause}) and could not be completed: {why}. "
        "The text received so far is incomplete."
    )


def not_allowed(target: Target, profile: str | None) -> ModelNotAllowed:
    """A named model whose provider has no key this caller may use: refused, not skipped."""
    provider = target.provider
    under = f" under profile {profile!r} (its keys choice decides who may pay)" if profile else ""
    return ModelNotAllowed(
        f"You may not use {target.model_id}: no {provider} key is available to you{under}. "
        "GET /v1/models lists the models you can use. To use this one, add your own "
        f"{provider} key on the Providers & keys page, or ask an admin for a team or "
        "organisation key."
    )


def final_error(run: Run) -> SwitchboardError | None:
    """The one error that best tells the caller what to do, or None if a model answered."""
    if run.served is not None:
        return None
    if run.emitted:
        return cut_error(run, "no other model could continue it")
    outcomes = [a.outcome for a in run.attempts]
    if outcomes and all(o == "no-key" for o in outcomes):
        providers = ", ".join(dict.fromkeys(a.provider for a in run.attempts))
        return NoKey(
            f"No API key for {providers}. Add one on the Providers & keys page, or ask an "
            "admin to run `switchboard key set PROVIDER`."
        )
    if run.budget_refusals and all(o in ("refused-budget", "no-key") for o in outcomes):
        return run.budget_refusals[0]
    # A prompt every window skipped before any call is the caller's to shorten too.
    needed = max(run.context_needed, run.prompt_tokens if "skipped-context" in outcomes else 0)
    if needed and all(o in ("skipped-context", "error", "no-key") for o in outcomes):
        largest = max((c.target.context_window or 0 for c in run.candidates), default=0)
        return ContextTooLong(
            f"The prompt has about {needed} tokens, more than any model in the "
            f"chain accepts (largest: {largest}). Shorten it or add a larger model."
        )
    details = "; ".join(f"{a.model}: {a.error_message or a.outcome}" for a in run.attempts)
    called = [o for o in outcomes if o in ("error", "timeout", "cut")]
    if called and all(o == "timeout" for o in called):
        return UpstreamTimeout(f"Every model timed out. {details}")
    return AllModelsFailed(f"Every model in the chain failed. {details}")


def _is_fallback(run: Run, target: Target) -> bool:
    """Another model than the chain's first answers, or one continues a cut answer."""
    return target.model_id != run.candidates[0].target.model_id or run.cut is not None


def serving_now(run: Run, cand: Candidate, first_ms: int, reported: str | None) -> Serving:
    """``cand`` has just produced its first output for the caller."""
    target = cand.target
    return Serving(
        target.model_id,
        target.provider,
        _is_fallback(run, target),
        tuple(run.attempts),
        first_ms,
        reported,
        cand.dropped,
    )


def _status(run: Run) -> str:
    if run.stopped and run.served is None:
        return STATUS_STOPPED
    if run.error is not None:
        if run.emitted:
            return STATUS_PARTIAL
        if isinstance(run.error, NoKey):
            return STATUS_NO_KEY
        if isinstance(run.error, BudgetExceeded):
            return STATUS_BUDGET
        return STATUS_FAILED
    fell_back = run.served is not None and _is_fallback(run, run.served)
    return STATUS_FALLBACK if fell_back else STATUS_SUCCESS


def summarise(run: Run) -> Summary:
    status = _status(run)
    billed = [a for a in run.attempts if a.usage.total_tokens]
    priced = all(a.priced for a in billed)
    cost = sum(a.cost_micros or 0 for a in billed) if priced else None
    model, provider = (run.served.model_id, run.served.provider) if run.served else (None, None)
    if model is None and status == STATUS_STOPPED and run.serving is not None:
        # Stopped mid-answer: the model whose text the caller was reading served it.
        model, provider = run.serving.model, run.serving.provider
    price = run.book.price_at(model, run.at) if model else None
    return Summary(
        request_id=run.request_id,
        requested_model=run.request.model,
        chain=run.route.chain,
        route_source=run.route.source,
        status=status,
        attempts=tuple(run.attempts),
        model=model,
        provider=provider,
        usage=run.usage,
        cost_micros=cost,
        priced=priced,
        price_version=price.version if price else None,
        fallback_used=status == STATUS_FALLBACK or run.cut is not None,
        finish_reason=run.finish_reason if run.error is None else None,
        latency_ms=ms_since(run.started),
        ttft_ms=run.ttft_ms,
        order_reason=run.route.order_reason,
        error=run.error,
        reported_model=run.reported_model if model else None,
        dropped_params=tuple(sorted(run.dropped)),
    )


def spend_by_provider(summary: Summary) -> Mapping[str, int]:
    spend: dict[str, int] = {}
    for a in summary.attempts:
        if a.usage.total_tokens and a.cost_micros:
            spend[a.provider] = spend.get(a.provider, 0) + a.cost_micros
    return spend


def tokens_in(message: str) -> int:
    """The largest token count an upstream error message mentions (context errors)."""
    counts = [int(m.replace(",", "")) for m in _TOKENS_IN_MESSAGE.findall(message)]
    return max(counts, default=0)


def add_usage(a: Usage, b: Usage) -> Usage:
    return Usage(
        a.prompt_tokens + b.prompt_tokens,
        a.completion_tokens + b.completion_tokens,
        a.cached_tokens + b.cached_tokens,
        a.reasoning_tokens + b.reasoning_tokens,
    )


def ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
