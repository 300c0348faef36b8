"""One comparison round: check it before anything is sent, build its requests, collect answers.

Every model gets its own ChatRequest (source "compare", fallbacks off unless asked),
so each column is that model alone and carries its own conversation. The page drives
``SyncGateway.stream_many`` and feeds each event to a ``RoundCollector``; batch runs
and the benchmark use ``run_round``.
"""

from __future__ import annotations

import csv
import io
import random
import string
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.orm import Session

from core.accounts import keys
from core.errors import InvalidInput, NoKey, NotFound, SwitchboardError
from core.request import (
    Caller,
    ChatRequest,
    CostEstimate,
    Done,
    Message,
    StreamEvent,
    Summary,
    TextDelta,
)
from core.settings.targets import TargetResolver

MIN_MODELS = 2
MAX_MODELS = 4
LABELS = string.ascii_uppercase[:MAX_MODELS]  # "ABCD"
MAX_PROMPT_CHARS = 100_000
MAX_BATCH_PROMPTS = 50
STATUS_REFUSED = "refused"  # the gateway refused before any upstream call


@dataclass(frozen=True)
class RoundSettings:
    """What every round of a session shares."""

    models: tuple[str, ...]
    task: str = ""
    system_prompt: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    fallbacks: bool = False  # off by default: the point is to see that model
    blind: bool = True


def check_models(models: Sequence[str], resolver: TargetResolver) -> tuple[str, ...]:
    """The models, cleaned; refuses duplicates, the wrong count and unknown ids."""
    chosen = tuple(m.strip() for m in models if m.strip())
    if len(set(chosen)) != len(chosen):
        twice = next(m for m in chosen if chosen.count(m) > 1)
        raise InvalidInput(f"{twice} is chosen twice; pick each model once.")
    if len(chosen) < MIN_MODELS:
        raise InvalidInput(f"Pick at least {MIN_MODELS} models to compare.")
    if len(chosen) > MAX_MODELS:
        raise InvalidInput(
            f"A round compares at most {MAX_MODELS} models; you picked {len(chosen)}. Remove some."
        )
    for model in chosen:
        try:
            resolver.resolve(model)
        except NotFound as exc:
            raise InvalidInput(exc.message) from exc
    return chosen


def check_settings(settings: RoundSettings) -> None:
    if settings.temperature is not None and not 0.0 <= settings.temperature <= 2.0:
        raise InvalidInput("Temperature must be between 0 and 2.")
    if settings.max_tokens is not None and not 1 <= settings.max_tokens <= 1_000_000:
        raise InvalidInput("Max tokens must be a whole number of at least 1.")
    if len(settings.task) > 64:
        raise InvalidInput("A task name can be at most 64 characters.")


def check_prompt(prompt: str) -> str:
    text = prompt.strip()
    if not text:
        raise InvalidInput("The prompt is empty. Write what every model should answer.")
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidInput(
            f"The prompt is {len(text):,} characters; the limit is {MAX_PROMPT_CHARS:,}."
        )
    return text


def check_keys(
    session: Session,
    caller: Caller,
    models: Sequence[str],
    resolver: TargetResolver,
    environ: Mapping[str, str],
) -> None:
    """Refuse when a model's provider has no key the caller may use (own, team, org, env)."""
    targets = [resolver.resolve(m) for m in models]
    needed = [t.provider for t in targets if t.key_required]
    missing = {
        s.provider for s in keys.key_status(session, caller, needed, environ) if s.source is None
    }
    lacking = [t.model_id for t in targets if t.provider in missing]
    if lacking:
        providers = ", ".join(sorted(missing))
        raise NoKey(
            f"You have no key for {providers}, so {', '.join(lacking)} cannot run. "
            "Add your own key on the Providers page, ask your admin for a team key, "
            "or pick other models."
        )


def check_round(
    session: Session,
    caller: Caller,
    settings: RoundSettings,
    prompts: Iterable[str],
    *,
    resolver: TargetResolver,
    environ: Mapping[str, str],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Everything refused before sending: returns the cleaned models and prompts."""
    models = check_models(settings.models, resolver)
    check_settings(settings)
    cleaned = tuple(check_prompt(p) for p in prompts)
    if not cleaned:
        raise InvalidInput("The prompt is empty. Write what every model should answer.")
    if len(cleaned) > MAX_BATCH_PROMPTS:
        raise InvalidInput(
            f"A batch runs at most {MAX_BATCH_PROMPTS} prompts; this one has {len(cleaned)}. "
            "Split it into several batches."
        )
    check_keys(session, caller, models, resolver, environ)
    return models, cleaned


def draw_labels(models: Sequence[str], rng: random.Random) -> tuple[dict[str, str], int]:
    """Labels "A".. for the models in a random order; returns (label -> model, seed).

    The seed is drawn from ``rng`` and stored with the round, so the order can be
    re-derived and a reopened session shows the same labels.
    """
    seed = rng.getrandbits(62)
    return labels_from_seed(models, seed), seed


def labels_from_seed(models: Sequence[str], seed: int) -> dict[str, str]:
    order = list(models)
    random.Random(seed).shuffle(order)
    return {LABELS[i]: model for i, model in enumerate(order)}


def column_messages(
    system_prompt: str, history: Sequence[tuple[str, str]], prompt: str
) -> tuple[Message, ...]:
    """One column's conversation: system prompt, its own earlier turns, the new prompt."""
    messages: list[Message] = []
    if system_prompt.strip():
        messages.append({"role": "system", "content": system_prompt.strip()})
    for asked, answered in history:
        messages.append({"role": "user", "content": asked})
        messages.append({"role": "assistant", "content": answered})
    messages.append({"role": "user", "content": prompt})
    return tuple(messages)


def build_requests(
    caller: Caller,
    settings: RoundSettings,
    models: Sequence[str],
    prompt: str,
    histories: Mapping[str, Sequence[tuple[str, str]]] | None = None,
    *,
    profile: str | None = None,
) -> list[ChatRequest]:
    histories = histories or {}
    return [
        ChatRequest(
            caller=caller,
            messages=column_messages(settings.system_prompt, histories.get(m, ()), prompt),
            model=m,
            fallbacks=None if settings.fallbacks else (),
            task=settings.task,
            source="compare",
            stream=True,
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            profile=profile,  # its keys choice decides whose key pays for each column
        )
        for m in models
    ]


@dataclass(frozen=True)
class RoundEstimate:
    low_micros: int | None  # None when no model is priced
    high_micros: int | None
    unpriced_models: tuple[str, ...]


def estimate_round(
    estimate: Callable[[ChatRequest], CostEstimate], requests: Sequence[ChatRequest]
) -> RoundEstimate:
    """The summed cost range of every column; unpriced models are listed, never counted as 0."""
    lows: list[int] = []
    highs: list[int] = []
    unpriced: list[str] = []
    for request in requests:
        found = estimate(request)
        unpriced.extend(found.unpriced_models)
        if found.low_micros is not None and found.high_micros is not None:
            lows.append(found.low_micros)
            highs.append(found.high_micros)
        elif not found.unpriced_models:
            unpriced.append(request.model)
    return RoundEstimate(
        sum(lows) if lows else None,
        sum(highs) if highs else None,
        tuple(dict.fromkeys(unpriced)),
    )


@dataclass(frozen=True)
class AnswerData:
    """One column's outcome, as stored with the round."""

    model: str
    text: str
    status: str
    error: str | None = None
    request_id: str | None = None
    served_model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_micros: int | None = 0
    priced: bool = True
    latency_ms: int = 0
    ttft_ms: int | None = None


@dataclass
class Column:
    """A column being filled while its stream runs."""

    model: str
    parts: list[str] = field(default_factory=list)
    summary: Summary | None = None
    refused: SwitchboardError | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def done(self) -> bool:
        return self.summary is not None or self.refused is not None

    @property
    def error(self) -> str | None:
        if self.refused is not None:
            return self.refused.message
        if self.summary is not None and self.summary.error is not None:
            return self.summary.error.message
        if self.summary is None:
            return "No answer arrived from the gateway; send the round again."
        return None

    def answer(self) -> AnswerData:
        s = self.summary
        if s is None:
            # Refused before any upstream call (or the stream never ended): nothing was billed.
            return AnswerData(self.model, self.text, STATUS_REFUSED, self.error)
        return AnswerData(
            model=self.model,
            text=self.text,
            status=s.status,
            error=self.error,
            request_id=s.request_id,
            served_model=s.model,
            prompt_tokens=s.usage.prompt_tokens,
            completion_tokens=s.usage.completion_tokens,
            cost_micros=s.cost_micros,
            priced=s.priced,
            latency_ms=s.latency_ms,
            ttft_ms=s.ttft_ms,
        )


class RoundCollector:
    """Gathers (index, event) pairs from stream_many into one Column per model."""

    def __init__(self, models: Sequence[str]) -> None:
        self.columns = [Column(m) for m in models]

    def add(self, index: int, event: StreamEvent | SwitchboardError) -> Column:
        column = self.columns[index]
        if isinstance(event, TextDelta):
            column.parts.append(event.text)
        elif isinstance(event, Done):
            column.summary = event.summary
        else:
            column.refused = event
        return column

    def answers(self) -> list[AnswerData]:
        return [c.answer() for c in self.columns]


class StreamsMany(Protocol):
    def stream_many(
        self, requests: Sequence[ChatRequest]
    ) -> Iterator[tuple[int, StreamEvent | SwitchboardError]]: ...


def run_round(gateway: StreamsMany, requests: Sequence[ChatRequest]) -> list[AnswerData]:
    """Run every column at once and wait for all of them (batch runs, benchmarks)."""
    collector = RoundCollector([r.model for r in requests])
    for index, event in gateway.stream_many(requests):
        collector.add(index, event)
    return collector.answers()


def round_cost(answers: Iterable[AnswerData]) -> int | None:
    """Summed cost of a round's answers; None if any answer is unpriced."""
    total = 0
    for a in answers:
        if a.cost_micros is None or not a.priced:
            return None
        total += a.cost_micros
    return total


def prompts_from_text(text: str) -> list[str]:
    """Pasted prompts: one per line, blank lines skipped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def prompts_from_csv(data: bytes) -> list[str]:
    """Prompts from a CSV file's ``prompt`` column (any case), empty cells skipped."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput("The CSV file is not UTF-8 text. Save it as UTF-8 CSV.") from exc
    reader = csv.DictReader(io.StringIO(text))
    column = next((f for f in reader.fieldnames or () if f.strip().lower() == "prompt"), None)
    if column is None:
        raise InvalidInput("The CSV file needs a column named `prompt`, one prompt per row.")
    try:
        return [row[column].strip() for row in reader if (row.get(column) or "").strip()]
    except csv.Error as exc:
        raise InvalidInput(f"The CSV file could not be read: {exc}.") from exc
