"""The one way a prompt reaches a model: pages, the /v1 API and the CLI all come here.

The walk: admit (core.gateway.admission: route, targets, keys, rate limit) -> walk the chain
(core.gateway.chain: reserve each candidate's worst case, call it, retry, fail over, continue a
broken stream) -> summarise (core.gateway.run) -> hand the ledger rows and budget settlement to
a batched background writer, so no request waits on those writes.

Nothing that happened is lost from the ledger: an admitted request is noted in the local
journal before its first upstream call (core/store/journal.py), rows the database does
not take wait there, and a background upkeep (core/gateway/upkeep.py) replays them, turns
requests of a process that died into ``interrupted`` rows, and charges expired holds.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.accounts.scrubber import Scrubber, Scrubbers, scrub_summary
from core.accounts.secrets import Cipher
from core.clock import Clock, utc_now
from core.errors import InvalidInput, ModelNotAllowed, NotFound, RateLimited, SwitchboardError
from core.gateway.admission import Admission, trace_of
from core.gateway.chain import ChainWalker, max_tokens_for
from core.gateway.lazysession import LazySession, NeedsDatabase, in_thread
from core.gateway.ledger_entry import LedgerEntry, entry_for, to_payload, write_entries
from core.gateway.retry import RetryPolicy
from core.gateway.run import Run, run_secrets, spend_by_provider, summarise
from core.gateway.upkeep import LedgerUpkeep, UpkeepSettings
from core.money import pricing, reservations
from core.money.catalog import Catalog
from core.request import (
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
from core.settings import routes
from core.settings.targets import TargetResolver
from core.store.batch_writer import BatchWriter
from core.store.journal import Backlog, Journal
from core.upstream.breaker import BreakerPolicy, Breakers, BreakerState
from core.upstream.calls import Upstream
from core.upstream.litellm_calls import CompletionFn

SummarySink = Callable[[Summary], None]


@dataclass(frozen=True)
class GatewaySettings:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    refresh_s: float = 30.0  # how long endpoints, prices and stats are reused
    # How long per-caller policy (routes, key lookups, limits, which budgets apply) is
    # reused. Another replica's change takes at most this long to apply here.
    policy_ttl_s: float = 2.0
    default_rpm: int | None = None
    default_tpm: int | None = None
    # The longest a request waits on the database (connect plus statement timeouts).
    db_wait_s: float = 15.0
    upkeep: UpkeepSettings = field(default_factory=UpkeepSettings)


@dataclass(frozen=True)
class _Record:
    """What the background writer stores for one request, in one transaction per batch."""

    request: ChatRequest
    summary: Summary
    holds: tuple[reservations.ReservationHandle, ...]
    key_events: tuple[tuple[int, str], ...]
    at: datetime
    rate_correction: int = 0  # actual tokens minus those a per-minute limit counted


def _scrubbed_block(block: Mapping[str, Any], scrubber: Scrubber) -> Mapping[str, Any]:
    thinking = block.get("thinking")
    if isinstance(thinking, str):
        return {**block, "thinking": scrubber.text(thinking)}
    return block


def _refusal_status(exc: SwitchboardError) -> str:
    if isinstance(exc, RateLimited):
        return STATUS_RATE
    # Not allowed means no key for it: filed where the no-key alerts and charts look.
    return STATUS_NO_KEY if isinstance(exc, ModelNotAllowed) else STATUS_FAILED


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
        journal: Journal | None = None,
    ) -> None:
        """``journal``: where rows wait while the database is away; None keeps them in
        memory only (they survive an outage, not the process)."""
        self.settings = settings or GatewaySettings()
        self._sessions = sessions
        self._clock = clock
        self.breakers = Breakers(self.settings.breaker, clock)
        self._admission = Admission(
            sessions=sessions,
            catalog=catalog,
            cipher=cipher,
            clock=clock,
            environ=os.environ if environ is None else environ,
            policy_ttl_s=self.settings.policy_ttl_s,
            refresh_s=self.settings.refresh_s,
            default_rpm=self.settings.default_rpm,
            default_tpm=self.settings.default_tpm,
            db_wait_s=self.settings.db_wait_s,
        )
        self._upstream = Upstream(completion)
        self._walker = ChainWalker(
            upstream=self._upstream,
            breakers=self.breakers,
            retry=self.settings.retry,
            reserve=self._admission.reserve,
            clock=clock,
            sleep=sleep,
            rng=rng or random.Random(),
        )
        self._ids = RequestIds()
        self._scrubbers = Scrubbers()
        self.journal = journal or Journal(None)
        self._writer: BatchWriter[_Record] = BatchWriter(
            sessions, self._write_records, on_written=self._written, on_failed=self._park
        )
        self.upkeep = LedgerUpkeep(
            sessions=sessions, journal=self.journal, clock=clock, settings=self.settings.upkeep
        )
        self.upkeep.start()

    # --- public -----------------------------------------------------------------

    @property
    def environ(self) -> Mapping[str, str]:
        """Where provider keys are looked up last (the process environment by default)."""
        return self._admission.environ

    def stream(
        self, request: ChatRequest, on_summary: SummarySink | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        """TextDelta events, then one Done whose summary says how it ended.

        The first delta from each model that answers carries ``serving``: the model, and
        the attempts before it (a mid-stream continuation brings a second one).

        Refusals before any work (bad input, unknown model, rate limit) raise
        SwitchboardError; everything after that ends in Done, with summary.error set
        when no model answered or a cut answer could not be completed.

        ``on_summary`` gets the summary of every admitted request, also one the caller
        stopped (which never sees Done): a chat page keeps a stopped answer's badge so.
        """
        return self._events(request, stream=request.stream, on_summary=on_summary)

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
        self, request: ChatRequest, *, stream: bool, on_summary: SummarySink | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        # Before admission starts the request's clock: a first call's import of litellm
        # (seconds) must not eat a short total timeout or be billed to its attempt.
        self._upstream.load()
        run = await self._admit(request, stream)
        scrubber = self._scrubbers.get(run_secrets(run))
        answer, thought = scrubber.stream(), scrubber.stream()
        # Before the first upstream call: should this process die, the request's cost
        # still reaches the ledger (an `interrupted` row, core/money/orphans.py).
        self.journal.open(run.request_id, self._trace(run))
        announced: Serving | None = None
        serving: Serving | None = None
        try:
            async with aclosing(self._walker.walk(run)) as pieces:
                async for piece in pieces:
                    # The walker sets run.serving before a new model's first output.
                    if run.serving is not announced:
                        serving = announced = run.serving
                    text = answer.feed(piece.text) if piece.text else ""
                    reasoning = thought.feed(piece.reasoning) if piece.reasoning else ""
                    whole = piece.tool_calls or piece.thinking_blocks
                    if whole:  # the turn's end: nothing may stay held behind it
                        text, reasoning = text + answer.flush(), reasoning + thought.flush()
                    if not (text or reasoning or whole):
                        continue  # a secret's start waits for its end
                    out = TextDelta(
                        text,
                        serving,
                        reasoning,
                        tuple(
                            replace(
                                c,
                                name=scrubber.text(c.name) if c.name else c.name,
                                arguments=scrubber.text(c.arguments),
                            )
                            for c in piece.tool_calls
                        ),
                        tuple(_scrubbed_block(b, scrubber) for b in piece.thinking_blocks),
                    )
                    try:
                        yield out
                    except BaseException:
                        # The caller left: mark it before the attempt below us closes.
                        run.stopped = True
                        raise
                    serving = None
            tail, thought_tail = answer.flush(), thought.flush()
            if tail or thought_tail:
                yield TextDelta(tail, serving, thought_tail)
        except BaseException:
            run.stopped = True
            stopped = self._finish(run, scrubber)
            if on_summary is not None:
                on_summary(stopped)
            raise
        summary = self._finish(run, scrubber)
        if on_summary is not None:
            on_summary(summary)
        yield Done(summary)

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
            snap = self._admission.snapshot(db)
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
            return self._admission.snapshot(db).resolver

    def breaker_states(self) -> list[BreakerState]:
        return self.breakers.states()

    def refresh(self) -> None:
        """Forget cached endpoints, prices and stats (after an admin changes them)."""
        self._admission.clear()

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every row submitted so far is written or kept in the journal."""
        return self._writer.flush(timeout_s)

    def backlog(self) -> Backlog:
        """What the journal holds for the database (see /health)."""
        return self.journal.backlog()

    def close(self) -> None:
        """Write everything still queued; call on shutdown so no ledger row is lost.

        Rows the database does not take stay in the journal file for the next start.
        """
        self.upkeep.stop()
        self._writer.close()
        if self.journal.backlog().queued:
            self.upkeep.run_once(wait_s=5.0)  # one last try; what fails stays in the file
        self.journal.close()

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
                return self._admission.admit(
                    LazySession(None), request, stream, request_id, at, started
                )
            except NeedsDatabase:
                return await in_thread(
                    self._admission.admit,
                    LazySession(self._sessions),
                    request,
                    stream,
                    request_id,
                    at,
                    started,
                    timeout_s=self.settings.db_wait_s,
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

    # --- recording --------------------------------------------------------------

    def _finish(self, run: Run, scrubber: Scrubber) -> Summary:
        summary = scrub_summary(summarise(run), scrubber)
        correction = 0
        if run.rate_counted is not None:
            # Admission counted the prompt's estimate; the minute gets what was really used.
            correction = summary.usage.total_tokens - run.rate_counted
        self._writer.submit(
            _Record(
                run.request, summary, tuple(run.holds), tuple(run.key_events), run.at, correction
            )
        )
        return summary

    def _trace(self, run: Run) -> dict[str, object]:
        """The journal's note of an admitted request: who, what, and its worst case."""
        trace = trace_of(run, run.candidates[0].target.provider if run.candidates else None, None)
        worst: list[int] = []
        for cand in run.candidates:
            max_out = max_tokens_for(run.request, run.route, cand.target)
            cost = run.book.worst_case_micros(
                cand.target.model_id, run.prompt_tokens, max_out, run.at
            )
            if cost is not None:
                worst.append(cost)
        trace["estimate_micros"] = max(worst, default=None)
        return trace

    @staticmethod
    def _entry(r: _Record) -> LedgerEntry:
        spend = spend_by_provider(r.summary)
        return entry_for(
            r.request, r.summary, spend, r.holds, r.key_events, r.at, r.rate_correction
        )

    def _write_records(self, session: Session, records: list[_Record]) -> None:
        write_entries(session, [self._entry(r) for r in records], self._clock(), check=False)

    def _written(self, records: list[_Record]) -> None:
        self.journal.resolve(r.summary.request_id for r in records)

    def _park(self, records: list[_Record]) -> None:
        """The database did not take these: keep them in the journal for the upkeep."""
        self.journal.park([(r.summary.request_id, to_payload(self._entry(r))) for r in records])
        self.upkeep.wake()
