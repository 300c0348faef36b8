"""core.money.pricing: exact micro-dollar costs, overrides by date, token estimates."""

from __future__ import annotations

import sys
import types
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from core.errors import Conflict, InvalidInput, NotFound
from core.money.catalog import Catalog, load_catalog
from core.money.pricing import (
    RELOAD_INTERVAL,
    PriceBook,
    count_prompt_tokens,
    estimate_prompt_tokens,
    load_price_book,
    set_price_override,
)
from core.request import Usage
from core.store import audit

NOW = datetime(2025, 3, 15, 12, 0, tzinfo=UTC)


def _chat(provider: str, **prices: float) -> dict[str, Any]:
    return {"mode": "chat", "litellm_provider": provider, "max_input_tokens": 1000, **prices}


PRICE_MAP: dict[str, Any] = {
    # $2.50 / $10 per 1M, cache reads $1.25: the same shape as gpt-4o.
    "gpt-test": _chat(
        "openai",
        input_cost_per_token=2.5e-06,
        output_cost_per_token=1e-05,
        cache_read_input_token_cost=1.25e-06,
    ),
    "half": _chat("openai", input_cost_per_token=5e-07, output_cost_per_token=5e-07),
    "tiny": _chat("openai", input_cost_per_token=4e-07, output_cost_per_token=4e-07),
    "thinker": _chat(
        "deepseek",
        input_cost_per_token=1e-06,
        output_cost_per_token=2e-06,
        output_cost_per_reasoning_token=4e-06,
    ),
    "ollama/free": _chat("ollama", input_cost_per_token=0, output_cost_per_token=0),
    "groq/mystery": _chat("groq"),
}


@pytest.fixture
def catalog() -> Catalog:
    return Catalog(PRICE_MAP, price_version="test-v1")


@pytest.fixture
def book(catalog: Catalog) -> PriceBook:
    return PriceBook(catalog, (), loaded_at=NOW)


def test_gpt4o_costs_are_exact_micro_dollars_from_the_bundled_catalog():
    catalog = load_catalog()
    book = PriceBook(catalog, (), loaded_at=NOW)
    # $2.50 and $10 per 1M: 1000 * 2.5 + 500 * 10 = 7500 micro-dollars ($0.0075).
    assert book.cost_micros("openai/gpt-4o", Usage(1000, 500), NOW) == (7500, catalog.price_version)
    # 200 of the prompt tokens were cache reads at $1.25: 800*2.5 + 200*1.25 + 500*10.
    assert book.cost_micros("openai/gpt-4o", Usage(1000, 500, cached_tokens=200), NOW)[0] == 7250
    # The bare litellm name resolves to the same model and price.
    assert book.cost_micros("gpt-4o", Usage(1000, 500), NOW)[0] == 7500


def test_cost_rounds_half_up_once_per_attempt(book: PriceBook):
    half = "openai/half"  # 0.5 micro-dollars per token either way
    assert book.cost_micros(half, Usage(1, 0), NOW)[0] == 1  # 0.5 -> 1 (not banker's 0)
    assert book.cost_micros(half, Usage(3, 0), NOW)[0] == 2  # 1.5 -> 2
    # Rounded once over the whole attempt: 0.5 + 0.5 = 1, not round(0.5) + round(0.5) = 2.
    assert book.cost_micros(half, Usage(1, 1), NOW)[0] == 1
    assert book.cost_micros("openai/tiny", Usage(1, 0), NOW)[0] == 0  # 0.4 -> 0
    assert book.cost_micros("openai/tiny", Usage(1_000_001, 0), NOW)[0] == 400_000  # 400000.4


def test_reasoning_tokens_are_part_of_completion_and_use_their_own_price_when_known(
    book: PriceBook,
):
    # thinker: $1 in, $2 out, $4 reasoning. 100 prompt + 50 completion of which 30 reasoning.
    assert book.cost_micros("deepseek/thinker", Usage(100, 50, reasoning_tokens=30), NOW)[0] == (
        100 * 1 + 20 * 2 + 30 * 4
    )
    # Without a separate price, reasoning is ordinary output (no double counting).
    assert book.cost_micros("openai/gpt-test", Usage(100, 50, reasoning_tokens=30), NOW)[0] == (
        250 + 500
    )
    # Nonsense usage (more cached than prompt tokens) is clamped, never negative.
    assert book.cost_micros("openai/gpt-test", Usage(10, 0, cached_tokens=99), NOW)[0] == 13


def test_unpriced_models_cost_none_never_zero(book: PriceBook):
    for model in ("groq/mystery", "no-such/model", "my-endpoint/llama"):
        assert book.price_at(model, NOW) is None
        assert book.cost_micros(model, Usage(1000, 1000), NOW) == (None, None)
        assert book.worst_case_micros(model, 1000, 1000, NOW) is None
    # An explicitly free model is priced at zero, which is different from unpriced.
    assert book.cost_micros("ollama/free", Usage(1000, 1000), NOW) == (0, "test-v1")


def test_worst_case_rounds_up_and_assumes_the_dearest_output(book: PriceBook):
    assert book.worst_case_micros("openai/tiny", 1, 0, NOW) == 1  # 0.4 -> 1 (cost rounds to 0)
    assert book.worst_case_micros("openai/half", 3, 0, NOW) == 2
    assert book.worst_case_micros("openai/gpt-test", 1000, 500, NOW) == 7500
    # Output priced at the reasoning rate ($4) since any output token may be reasoning.
    assert book.worst_case_micros("deepseek/thinker", 100, 50, NOW) == 100 + 50 * 4


def test_override_applies_only_from_its_date_and_changes_the_version(sessions, catalog):
    start = NOW + timedelta(days=1)
    with sessions.begin() as s:
        info = set_price_override(
            s,
            "openai/gpt-test",
            Decimal("1.5"),
            Decimal("6"),
            start,
            actor="alice",
            now=NOW,
            known_model=lambda m: catalog.get(m) is not None,
        )
    with sessions() as s:
        book = load_price_book(s, catalog, NOW)
        entries = audit.recent(s, action="price.override")
    usage = Usage(1000, 500)
    before = book.cost_micros("openai/gpt-test", usage, start - timedelta(microseconds=1))
    after = book.cost_micros("openai/gpt-test", usage, start)
    assert before == (7500, "test-v1")  # the catalog price, untouched by the later override
    assert after == (1000 * 1.5 + 500 * 6, f"override:{info.id}")
    assert book.cost_micros("gpt-test", usage, start + timedelta(days=30)) == after  # alias
    price = book.price_at("openai/gpt-test", start)
    assert price is not None and (price.input_per_1m, price.output_per_1m) == (
        Decimal("1.5"),
        Decimal(6),
    )
    # An override replaces the whole deal: cached tokens bill at the override's input price.
    assert book.cost_micros("openai/gpt-test", Usage(1000, 0, cached_tokens=1000), start)[0] == (
        1500
    )
    assert [(e.actor, e.target, e.details["input_per_1m"]) for e in entries] == [
        ("alice", "openai/gpt-test", "1.5")
    ]


def test_a_later_override_supersedes_and_only_a_future_one_can_be_replaced(sessions, catalog):
    known = lambda m: True  # noqa: E731  (endpoint models are not in the catalog)
    first, second = NOW - timedelta(days=1), NOW + timedelta(days=10)
    with sessions.begin() as s:
        a = set_price_override(
            s, "ep/llama", Decimal(1), Decimal(2), first, actor="x", now=NOW, known_model=known
        )
        set_price_override(
            s, "ep/llama", Decimal(3), Decimal(4), second, actor="x", now=NOW, known_model=known
        )
    with sessions.begin() as s:  # not in force yet: nothing was priced with it, so replace it
        b = set_price_override(
            s, "ep/llama", Decimal(5), Decimal(6), second, actor="y", now=NOW, known_model=known
        )
    with sessions.begin() as s, pytest.raises(Conflict, match="already in force"):
        set_price_override(
            s, "ep/llama", Decimal(9), Decimal(9), first, actor="x", now=NOW, known_model=known
        )
    with sessions() as s:
        book = load_price_book(s, catalog, NOW)
        replaced = audit.recent(s, action="price.override", actor="y")
    assert book.price_at("ep/llama", first - timedelta(seconds=1)) is None  # unpriced before
    assert book.cost_micros("ep/llama", Usage(10, 10), NOW) == (30, f"override:{a.id}")
    assert book.cost_micros("ep/llama", Usage(10, 10), second) == (110, f"override:{b.id}")
    assert replaced[0].details["replaced"] is True


@pytest.mark.parametrize(
    ("model", "input_price", "output_price", "effective", "error", "fragment"),
    [
        ("openai/gpt-test", Decimal(-1), Decimal(1), NOW, InvalidInput, "non-negative"),
        ("openai/gpt-test", Decimal(1), Decimal("NaN"), NOW, InvalidInput, "non-negative"),
        ("openai/gpt-test", 1.5, Decimal(1), NOW, InvalidInput, "non-negative"),  # a float
        ("openai/gpt-test", Decimal("0.0000001"), Decimal(1), NOW, InvalidInput, "6 decimal"),
        (
            "openai/gpt-test",
            Decimal(1),
            Decimal(1),
            NOW.replace(tzinfo=None),
            InvalidInput,
            "time zone",
        ),
        ("openai/nope", Decimal(1), Decimal(1), NOW, NotFound, "Unknown model"),
    ],
)
def test_override_validation(
    sessions, catalog, model, input_price, output_price, effective, error, fragment
):
    with sessions.begin() as s, pytest.raises(error, match=fragment):
        set_price_override(
            s,
            model,
            input_price,
            output_price,
            effective,
            actor="x",
            now=NOW,
            known_model=lambda m: catalog.get(m) is not None,
        )
    with sessions() as s:
        assert load_price_book(s, catalog, NOW).price_at(model, NOW + timedelta(days=1)) == (
            PriceBook(catalog, (), NOW).price_at(model, NOW)
        )


def test_price_book_says_when_to_reload(book: PriceBook):
    assert not book.needs_reload(NOW + RELOAD_INTERVAL - timedelta(seconds=1))
    assert book.needs_reload(NOW + RELOAD_INTERVAL)


def test_estimate_prompt_tokens_is_cheap_and_rounds_up():
    one = [{"role": "user", "content": "a" * 40}]
    # 3 for the reply + 4 framing + ceil((40 content + 4 role chars) / 4) = 18.
    assert estimate_prompt_tokens(one) == 18
    assert estimate_prompt_tokens([{"role": "user", "content": "a" * 41}]) == 19
    parts = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "b" * 36},
                {"type": "image_url", "image_url": {"url": "x"}},
            ],
        }
    ]
    assert estimate_prompt_tokens(parts) == 3 + 4 + 10 + 765
    assert estimate_prompt_tokens([]) == 3
    longer = [*one, {"role": "assistant", "content": "c" * 400}]
    assert estimate_prompt_tokens(longer) > estimate_prompt_tokens(one)


def test_count_prompt_tokens_prefers_the_tokenizer_and_falls_back_on_any_failure(monkeypatch):
    messages = [{"role": "user", "content": "hello there"}]
    estimate = estimate_prompt_tokens(messages)
    seen: dict[str, Any] = {}

    def counter(*, model: str, messages: list[dict[str, Any]]) -> int:
        seen.update(model=model, messages=messages)
        return 42

    assert count_prompt_tokens("openai/gpt-4o", messages, counter) == 42
    assert seen == {"model": "openai/gpt-4o", "messages": messages}

    def broken(**_: Any) -> int:
        raise RuntimeError("no tokenizer offline")

    assert count_prompt_tokens("x", messages, broken) == estimate
    assert count_prompt_tokens("x", messages, lambda **_: "12") == estimate  # not an int
    # Without a counter it imports litellm lazily (a stand-in module here: the real one
    # takes seconds to import).
    fake = types.ModuleType("litellm")
    fake.token_counter = lambda **kw: 7  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "litellm", fake)
    assert count_prompt_tokens("x", messages) == 7
    monkeypatch.setitem(sys.modules, "litellm", None)  # import fails -> estimate
    assert count_prompt_tokens("x", messages) == estimate
