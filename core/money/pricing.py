"""Exact request costs in integer micro-dollars, from the catalog plus admin overrides.

Units: a price of $X per 1M tokens is exactly X micro-dollars per token, so a cost is
``tokens * price`` in Decimal, rounded once per attempt (ROUND_HALF_UP) to an integer.
Worst-case figures for budget reservations round up instead, so a hold never undershoots.
Floats never appear.

Token conventions follow litellm's normalised usage:

* ``cached_tokens`` are a subset of ``prompt_tokens``; they are billed at the cache-read
  price when the model has one, else at the input price.
* ``reasoning_tokens`` are a subset of ``completion_tokens``; they are billed at the
  reasoning price when the model has a separate one, else at the output price
  (most providers bill reasoning as ordinary output).

An admin override (a ``PriceOverride`` row) replaces the whole price of a model from its
``effective_from`` onwards: cached and reasoning tokens are then billed at the override's
input and output prices, because the catalog's discounts belong to a different deal.
Costs are computed at request time and stored with the price ``version`` they used, so a
new or back-dated override never rewrites what was already recorded.

A :class:`PriceBook` is an immutable snapshot, so pricing costs no query per request. The
gateway reloads it every ``refresh_s`` (30 s by default); :data:`RELOAD_INTERVAL` is the
most any replica's book may lag (see :meth:`PriceBook.needs_reload`), and an override
that close to taking effect can no longer be replaced.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, localcontext
from types import MappingProxyType
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import utc_now
from core.errors import Conflict, InvalidInput, NotFound
from core.money.catalog import Catalog
from core.request import MICROS_PER_USD, Message, Usage
from core.store import audit
from core.store.tables import PriceOverride

RELOAD_INTERVAL: Final = timedelta(seconds=60)
# Cheap token estimate: ~4 characters per token for English text, plus OpenAI's documented
# framing overhead per message and per reply; images use the 1024x1024 high-detail cost.
CHARS_PER_TOKEN: Final = 4
TOKENS_PER_MESSAGE: Final = 4
TOKENS_PER_REPLY: Final = 3
TOKENS_PER_IMAGE: Final = 765
# Per image when a model's context window is unknown: the most Anthropic's and
# OpenAI's standard models count for one (high detail). Models with a known window hold it.
IMAGE_TOKENS_BOUND: Final = 1_600
_PRECISION: Final = 60  # token counts times prices stay far below this many digits


@dataclass(frozen=True, slots=True)
class Price:
    """Dollars per 1M tokens (= micro-dollars per token); None where no separate price."""

    input_per_1m: Decimal
    output_per_1m: Decimal
    cache_read_per_1m: Decimal | None
    reasoning_per_1m: Decimal | None
    version: str  # the catalog's price_version, or "override:<id>"


@dataclass(frozen=True, slots=True)
class OverrideInfo:
    id: int
    model_id: str
    effective_from: datetime
    input_per_1m: Decimal
    output_per_1m: Decimal
    created_by: str


def _round(value: Decimal, mode: str) -> int:
    return int(value.quantize(Decimal(1), rounding=mode))


class PriceBook:
    """Catalog prices plus overrides, frozen at load time; safe to share between threads."""

    def __init__(
        self, catalog: Catalog, overrides: Iterable[OverrideInfo], loaded_at: datetime
    ) -> None:
        self.catalog: Final = catalog
        self.loaded_at: Final = loaded_at
        by_model: dict[str, list[tuple[datetime, Price]]] = {}
        for o in overrides:
            price = Price(o.input_per_1m, o.output_per_1m, None, None, f"override:{o.id}")
            by_model.setdefault(self._canonical(o.model_id), []).append((o.effective_from, price))
        self._overrides: Mapping[str, tuple[tuple[datetime, Price], ...]] = MappingProxyType(
            {m: tuple(sorted(rows, key=lambda r: r[0])) for m, rows in by_model.items()}
        )

    def _canonical(self, model_id: str) -> str:
        info = self.catalog.get(model_id)
        return info.id if info else model_id

    def needs_reload(self, now: datetime) -> bool:
        return now - self.loaded_at >= RELOAD_INTERVAL

    def price_at(self, model_id: str, at: datetime) -> Price | None:
        """The price in force at ``at``; None when the model is unpriced (never free)."""
        rows = self._overrides.get(self._canonical(model_id), ())
        index = bisect.bisect_right([start for start, _ in rows], at)
        if index:
            return rows[index - 1][1]
        info = self.catalog.get(model_id)
        if info is None or info.input_price is None or info.output_price is None:
            return None
        return Price(
            info.input_price,
            info.output_price,
            info.cache_read_price,
            info.reasoning_price,
            self.catalog.price_version,
        )

    def cost_micros(
        self, model_id: str, usage: Usage, at: datetime
    ) -> tuple[int | None, str | None]:
        """(cost, price version) of one attempt; (None, None) when unpriced."""
        price = self.price_at(model_id, at)
        if price is None:
            return None, None
        # Clamp: a provider reporting more cached than prompt tokens must not go negative.
        cached = min(max(usage.cached_tokens, 0), usage.prompt_tokens)
        reasoning = min(max(usage.reasoning_tokens, 0), usage.completion_tokens)
        cache_price = price.cache_read_per_1m
        reasoning_price = price.reasoning_per_1m
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            total = (usage.prompt_tokens - cached) * price.input_per_1m
            total += cached * (price.input_per_1m if cache_price is None else cache_price)
            if reasoning_price is None:
                total += usage.completion_tokens * price.output_per_1m
            else:
                total += (usage.completion_tokens - reasoning) * price.output_per_1m
                total += reasoning * reasoning_price
            return _round(total, ROUND_HALF_UP), price.version

    def worst_case_micros(
        self, model_id: str, prompt_tokens: int, max_output_tokens: int, at: datetime
    ) -> int | None:
        """The most a request can cost (no cache discount, priciest output), rounded up."""
        price = self.price_at(model_id, at)
        if price is None:
            return None
        input_price = max(price.input_per_1m, price.cache_read_per_1m or Decimal(0))
        output_price = max(price.output_per_1m, price.reasoning_per_1m or Decimal(0))
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            total = prompt_tokens * input_price + max_output_tokens * output_price
            return _round(total, ROUND_CEILING)


def list_overrides(session: Session) -> list[OverrideInfo]:
    rows = session.scalars(
        select(PriceOverride).order_by(PriceOverride.model_id, PriceOverride.effective_from)
    )
    return [
        OverrideInfo(
            id=r.id,
            model_id=r.model_id,
            effective_from=r.effective_from,
            input_per_1m=Decimal(r.input_micros_per_mtok) / MICROS_PER_USD,
            output_per_1m=Decimal(r.output_micros_per_mtok) / MICROS_PER_USD,
            created_by=r.created_by,
        )
        for r in rows
    ]


def load_price_book(session: Session, catalog: Catalog, now: datetime | None = None) -> PriceBook:
    """Snapshot the catalog and every override; ``now`` stamps it for :meth:`needs_reload`."""
    return PriceBook(catalog, list_overrides(session), loaded_at=now or utc_now())


def _micros_per_mtok(value: Decimal, what: str) -> int:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise InvalidInput(f"The {what} price must be a non-negative number of dollars.")
    micros = value * MICROS_PER_USD
    if micros != micros.to_integral_value():
        raise InvalidInput(
            f"The {what} price {value} has more than 6 decimal places; "
            "prices are kept in whole micro-dollars per 1M tokens."
        )
    return int(micros)


def set_price_override(
    session: Session,
    model_id: str,
    input_per_1m: Decimal,
    output_per_1m: Decimal,
    effective_from: datetime,
    actor: str,
    now: datetime,
    known_model: Callable[[str], bool],
) -> OverrideInfo:
    """Record a negotiated price (USD per 1M tokens) for a model from ``effective_from`` on.

    A future override may be replaced (same instant); one already in force may not, since
    stored costs name its version. Stored costs are never recomputed.
    """
    model_id = model_id.strip()
    if not model_id or not known_model(model_id):
        raise NotFound(
            f"Unknown model {model_id!r}. Use a catalog id such as openai/gpt-4o "
            "(`switchboard models` lists them) or an endpoint model."
        )
    if effective_from.tzinfo is None:
        raise InvalidInput("The effective date needs a time zone (prices are kept in UTC).")
    input_micros = _micros_per_mtok(input_per_1m, "input")
    output_micros = _micros_per_mtok(output_per_1m, "output")
    row = session.scalar(
        select(PriceOverride).where(
            PriceOverride.model_id == model_id, PriceOverride.effective_from == effective_from
        )
    )
    replaced = row is not None
    if row is None:
        row = PriceOverride(model_id=model_id, effective_from=effective_from)
        session.add(row)
    elif row.effective_from <= now + RELOAD_INTERVAL:
        # Costs may already be stored under "override:<id>" (replicas' price books can be
        # RELOAD_INTERVAL old); that version must keep meaning one price, so a correction
        # is a new override from a later instant.
        raise Conflict(
            f"A price for {model_id} from {effective_from.isoformat()} is already in force "
            f"(override:{row.id}). Set the corrected price from a later date or time."
        )
    row.input_micros_per_mtok, row.output_micros_per_mtok = input_micros, output_micros
    row.created_at, row.created_by = now, actor
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="price.override",
        target=model_id,
        now=now,
        details={
            "input_per_1m": str(input_per_1m),
            "output_per_1m": str(output_per_1m),
            "effective_from": effective_from.isoformat(),
            "replaced": bool(replaced),
        },
    )
    return OverrideInfo(
        row.id, model_id, effective_from, input_per_1m, output_per_1m, created_by=actor
    )


def _texts(message: Message) -> tuple[list[str], int]:
    """(the texts the model reads, image count) in one OpenAI-shaped message."""
    texts: list[str] = []
    images = 0
    content: Any = message.get("content")
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, Sequence):
        for part in content:
            if not isinstance(part, Mapping):
                continue
            if part.get("type") in ("image_url", "image", "input_image"):
                images += 1
            elif isinstance(text := part.get("text"), str):
                texts.append(text)
    for key in ("name", "role"):
        value = message.get(key)
        if isinstance(value, str):
            texts.append(value)
    for key in ("tool_calls", "function_call"):
        if message.get(key) is not None:
            texts.append(json.dumps(message[key], default=str))
    return texts, images


def estimate_prompt_tokens(messages: Iterable[Message]) -> int:
    """A fast, dependency-free prompt size estimate (about 4 characters per token)."""
    tokens = TOKENS_PER_REPLY
    for message in messages:
        texts, images = _texts(message)
        chars = sum(len(t) for t in texts)
        tokens += TOKENS_PER_MESSAGE + math.ceil(chars / CHARS_PER_TOKEN)
        tokens += images * TOKENS_PER_IMAGE
    return tokens


def estimate_text_tokens(text: str) -> int:
    """The 4-characters estimate for text sent besides the messages (tool definitions)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def prompt_token_bound(
    messages: Iterable[Message], *, extra_text: str = "", context_window: int | None = None
) -> int:
    """A prompt size no provider's count exceeds, for budget holds: one token per UTF-8 byte.

    Byte-level BPE (OpenAI, Anthropic, Llama) and SentencePiece with byte fallback never
    make a token of less than a byte, so this holds where the 4-characters estimate does
    not (Chinese or Japanese text is about one token per character, three bytes).
    Images have no such bound: gpt-4o-mini counts one at up to ~37k tokens (at a lower
    price). Only the model's context window bounds every count, since a longer prompt is
    refused, so a prompt with an image holds the whole window when it is known.
    ``extra_text`` is sent besides the messages (a continuation's partial answer).
    """
    tokens = TOKENS_PER_REPLY + utf8_len(extra_text)
    image_count = 0
    for message in messages:
        texts, images = _texts(message)
        tokens += TOKENS_PER_MESSAGE + sum(utf8_len(t) for t in texts)
        image_count += images
    if context_window:
        return context_window if image_count else min(tokens, context_window)
    return tokens + image_count * IMAGE_TOKENS_BOUND


TokenCounter = Callable[..., int]


def count_prompt_tokens(
    model: str, messages: Sequence[Message], counter: TokenCounter | None = None
) -> int:
    """Accurate count via litellm's tokenizer; the cheap estimate if that fails in any way.

    litellm is imported lazily: importing it costs seconds, and callers on a hot path
    should prefer :func:`estimate_prompt_tokens`.
    """
    try:
        if counter is None:
            import litellm

            counter = litellm.token_counter
        count = counter(model=model, messages=[dict(m) for m in messages])
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            return count
    except Exception:  # any tokenizer failure must not fail the request
        pass
    return estimate_prompt_tokens(messages)
