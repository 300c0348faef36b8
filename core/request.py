"""The gateway's vocabulary: what a caller asks for, and what comes back.

Pages, the /v1 API and the CLI all build a ``ChatRequest`` and read ``Summary``;
nothing outside core/gateway/gateway.py sees litellm's types.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from core.errors import SwitchboardError

Message = Mapping[str, Any]  # OpenAI-shaped: {"role": ..., "content": ...}
SOURCES = ("chat", "compare", "api")
Source = Literal["chat", "compare", "api"]


class RequestIds:
    """Random 128-bit hex request ids: ids, not secrets, so no os.urandom per id.

    uuid4 reads os.urandom, a syscall that hands the GIL away on the event loop; under
    load taking it back cost ~40 µs a request. The generator is seeded from it once.
    """

    def __init__(self) -> None:
        self._rng = random.Random()

    def new(self) -> str:
        return f"{self._rng.getrandbits(128):032x}"


# Request statuses written to the ledger.
STATUS_SUCCESS = "success"
STATUS_FALLBACK = "success-after-fallback"
STATUS_FAILED = "failed"
STATUS_PARTIAL = "partial"  # text was sent, then every continuation failed
STATUS_STOPPED = "stopped"  # the caller stopped the generation
STATUS_BUDGET = "refused-budget"
STATUS_RATE = "refused-rate-limit"
STATUS_NO_KEY = "no-key"
# The outcome is unknown (its process died, or its row was lost): the cost is the held
# worst case, an estimate, until the journal brings the real row.
STATUS_INTERRUPTED = "interrupted"

MICROS_PER_USD = Decimal(1_000_000)


def micros_to_usd(micros: int) -> Decimal:
    """Exact dollars from integer micro-dollars."""
    return Decimal(micros) / MICROS_PER_USD


@dataclass(frozen=True)
class Caller:
    """Who is asking, and how the request is billed."""

    user_id: int
    username: str
    role: str
    team_id: int | None = None
    token_name: str | None = None


@dataclass(frozen=True)
class ChatRequest:
    caller: Caller
    messages: tuple[Message, ...]
    model: str = "auto"  # a catalog id, `<endpoint>/<model>`, or "auto" for the route
    fallbacks: tuple[str, ...] | None = None  # None: use the route's; (): none at all
    task: str = ""
    source: Source = "api"
    stream: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict)  # other OpenAI params, passed on
    metadata: Mapping[str, Any] = field(default_factory=dict)
    conversation_id: str | None = None
    profile: str | None = None
    # Narrow which keys may pay, in order ("own", "team", "org", "env"); None: the
    # profile's keys choice. A key's Test button sends only that key's source.
    key_sources: tuple[str, ...] | None = None
    request_id: str | None = None  # the ledger id; the gateway makes one when not given
    # Refuse a named model the caller has no key for (ModelNotAllowed) instead of skipping
    # it for the route's fallbacks: the /v1 contract, which GET /v1/models lists by.
    strict_model: bool = False
    # Secrets the caller's request itself carries (its gateway token): never echoed back
    # or stored (core/accounts/scrubber.py). Not shown, not compared.
    scrub: tuple[str, ...] = field(default=(), repr=False, compare=False)
    # Drop the fields in ``params`` a model does not take instead of refusing the request
    # (the /v1 `drop_params` field; a route can ask for the same).
    drop_params: bool = False


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Attempt:
    """One upstream attempt (each retry is its own), or a candidate skipped without a call."""

    model: str
    provider: str
    outcome: str  # ok | error | timeout | cut | skipped-breaker | no-key | refused-budget | …
    started_at: datetime
    latency_ms: int = 0
    ttft_ms: int | None = None
    key_source: str | None = None  # own | team | org | env | none
    status_code: int | None = None
    error_class: str | None = None
    error_message: str | None = None  # redacted: never a key
    usage: Usage = Usage()  # this attempt's own tokens, not the request's running total
    cost_micros: int | None = 0  # None when the model is unpriced
    priced: bool = True
    price_version: str | None = None  # the price that costed this attempt; None: unpriced


@dataclass(frozen=True)
class Summary:
    """What happened to one request, as recorded in the ledger and returned to the caller."""

    request_id: str
    requested_model: str
    chain: tuple[str, ...]
    route_source: str
    status: str
    attempts: tuple[Attempt, ...]
    model: str | None = None  # the model that actually answered
    provider: str | None = None
    usage: Usage = Usage()  # every billed attempt's, a cut one's partial answer included
    cost_micros: int | None = 0  # summed over all billed attempts; None if any was unpriced
    priced: bool = True
    price_version: str | None = None
    fallback_used: bool = False
    finish_reason: str | None = None
    latency_ms: int = 0
    ttft_ms: int | None = None
    order_reason: str | None = None
    error: SwitchboardError | None = None
    # The model name the answering provider reported (e.g. ``gpt-4o-mini-2024-07-18``).
    reported_model: str | None = None
    # Request fields left out for a model that does not take them, because the caller
    # or the route asked for that (``drop_params``); sorted.
    dropped_params: tuple[str, ...] = ()

    @property
    def cost_usd(self) -> Decimal | None:
        return None if self.cost_micros is None else micros_to_usd(self.cost_micros)

    @property
    def answer_usage(self) -> Usage:
        """The answering model's own usage, as an API response reports it."""
        for attempt in reversed(self.attempts):
            if attempt.outcome == "ok":
                return attempt.usage
        return self.usage


@dataclass(frozen=True)
class Serving:
    """Which model answers from this text on, and what it took to get there.

    A failover before the first text is invisible to the caller, so at the first text
    this names the model answering; only a mid-stream continuation changes it, and
    that brings a new Serving. What happens after (cost, a cut) is in the Summary.
    """

    model: str
    provider: str
    fallback: bool  # not the chain's first model, or continuing a cut answer
    attempts: tuple[Attempt, ...]  # the attempts finished before this one
    latency_ms: int  # this attempt's time to its first text
    reported_model: str | None = None  # the name the provider gave its model, if it did
    dropped_params: tuple[str, ...] = ()  # request fields left out for this model


@dataclass(frozen=True)
class ToolCall:
    """One whole function call of the answer (arguments are the model's JSON text)."""

    index: int  # 0, 1, ... in the order the model made them
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer, in order; never repeats what was already sent.

    Most carry ``text``. A reasoning model's thinking arrives as ``reasoning`` before
    the text. Tool calls arrive whole, once the model has finished making them (see
    core/gateway/toolcalls.py): a call cut mid-arguments never reaches a caller.
    """

    text: str
    # Set on the first delta from each model that answers, None on the rest: the
    # common delta costs no more than before, yet a client can tell who is talking.
    serving: Serving | None = None
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    # Anthropic's signed thinking blocks, whole, with the tool calls: a client hands
    # them back in its next turn, as Claude requires when it thought before calling.
    thinking_blocks: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Done:
    """The stream finished; ``summary.status`` says whether it is complete or partial."""

    summary: Summary


StreamEvent = TextDelta | Done


@dataclass(frozen=True)
class Completion:
    text: str
    summary: Summary


@dataclass(frozen=True)
class CostEstimate:
    """A request's cost range before sending: low assumes a short answer, high the maximum."""

    prompt_tokens: int
    low_micros: int | None
    high_micros: int | None
    unpriced_models: tuple[str, ...] = ()
