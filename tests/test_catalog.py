"""Tests for core.money.catalog: the offline model catalog read from litellm's bundled price map."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.money.catalog import (
    CAPABILITIES,
    PROVIDER_KEY_ENV,
    PROVIDER_KEY_PREFIX,
    PROVIDER_KEY_URL,
    REQUIRED_PROVIDERS,
    TIER_BANDS,
    Catalog,
    ModelInfo,
    bundled_map_path,
    cost_tier,
    load_catalog,
    per_million,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundled() -> Catalog:
    return load_catalog()


def _chat(**extra: Any) -> dict[str, Any]:
    return {"mode": "chat", "max_input_tokens": 1000, "max_output_tokens": 100, **extra}


SYNTHETIC: dict[str, Any] = {
    "sample_spec": {"mode": "one of: chat, embedding", "litellm_provider": "x"},
    "gpt-test": _chat(
        litellm_provider="openai",
        input_cost_per_token=2.5e-06,
        output_cost_per_token=1e-05,
        supports_vision=True,
        supports_function_calling=True,
        supports_response_schema=True,
    ),
    "groq/llama-test": _chat(
        litellm_provider="groq",
        input_cost_per_token=5e-08,
        output_cost_per_token=8e-08,
        supports_function_calling=True,
    ),
    "groq/mystery": _chat(litellm_provider="groq"),  # no prices at all
    "half-priced": _chat(litellm_provider="deepseek", input_cost_per_token=1e-06),
    "command-test": _chat(
        litellm_provider="cohere_chat",
        input_cost_per_token=1.5e-07,
        output_cost_per_token=6e-07,
    ),
    "ollama/local": _chat(
        litellm_provider="ollama",
        input_cost_per_token=0.0,
        output_cost_per_token=0.0,
    ),
    "claude-test": _chat(
        litellm_provider="anthropic",
        input_cost_per_token=1.5e-05,
        output_cost_per_token=7.5e-05,
        supports_assistant_prefill=True,
        supports_vision=True,
    ),
    "streamless": _chat(
        litellm_provider="openai",
        input_cost_per_token=1.5e-04,
        output_cost_per_token=6e-04,
        supports_native_streaming=False,
    ),
    "text-embedding-test": {"mode": "embedding", "litellm_provider": "openai"},
    "ft:gpt-test": _chat(litellm_provider="openai", input_cost_per_token=3e-06),
    "openai/container": {
        "mode": "chat",
        "litellm_provider": "openai",
        "code_interpreter_cost_per_session": 0.03,
    },
    "shared-name": _chat(litellm_provider="xai", input_cost_per_token=1e-06),
    "mistral/shared-name": _chat(litellm_provider="mistral", input_cost_per_token=1e-06),
}


@pytest.fixture()
def synthetic() -> Catalog:
    return Catalog(SYNTHETIC)


# --- bundled map ---------------------------------------------------------------------------


def test_bundled_has_enough_models_and_required_providers(bundled: Catalog) -> None:
    models = bundled.models()
    assert len(models) >= 100
    assert all(isinstance(m, ModelInfo) for m in models)
    counts = {p: sum(m.provider == p for m in models) for p in REQUIRED_PROVIDERS}
    assert all(n > 0 for n in counts.values()), counts
    assert set(REQUIRED_PROVIDERS) <= set(bundled.providers())


def test_bundled_models_sorted_and_unique(bundled: Catalog) -> None:
    models = bundled.models()
    ids = [m.id for m in models]
    assert len(ids) == len(set(ids))
    assert [m.provider for m in models] == sorted(m.provider for m in models)
    assert bundled.providers() == tuple(sorted(set(bundled.providers())))


def test_gpt4o_exact_prices_match_the_json(bundled: Catalog) -> None:
    raw = json.loads(bundled_map_path().read_text())["gpt-4o"]
    model = bundled.get("openai/gpt-4o")
    assert model is not None
    assert model.input_price == Decimal(repr(raw["input_cost_per_token"])) * 1_000_000
    assert model.input_price == Decimal("2.5")
    assert model.output_price == Decimal("10")
    assert model.cache_read_price == Decimal("1.25")
    assert isinstance(model.input_price, Decimal)
    assert model.context_window == 128000 and model.max_output_tokens == 16384
    assert model.vision and model.tools and model.json_mode and model.streaming
    assert model.priced and model.cost_tier == "medium"


def test_no_doubled_provider_prefix_in_bundled(bundled: Catalog) -> None:
    for model in bundled.models():
        assert model.id == f"{model.provider}/{model.name}"
        # openrouter's own router models really are called "openrouter/auto" etc.
        if model.provider != "openrouter":
            assert not model.name.startswith(f"{model.provider}/"), model.id
    groq = bundled.get("groq/llama-3.1-8b-instant")
    assert groq is not None and groq.name == "llama-3.1-8b-instant"


def test_bundled_skips_non_chat_and_pseudo_entries(bundled: Catalog) -> None:
    ids = {m.id for m in bundled.models()}
    assert "openai/text-embedding-3-small" not in ids
    assert not any(m.name == "sample_spec" for m in bundled.models())
    assert not any(m.name.startswith("ft:") or "*" in m.id for m in bundled.models())
    assert "openai/container" not in ids


def test_bundled_ollama_is_free_and_cohere_normalised(bundled: Catalog) -> None:
    ollama = bundled.search(providers=["ollama"])
    assert ollama and all(m.cost_tier == "free" for m in ollama)
    assert "cohere_chat" not in bundled.providers()
    assert bundled.search(providers=["cohere_chat"]) == bundled.search(providers=["cohere"])


def test_price_version_format(bundled: Catalog) -> None:
    assert re.fullmatch(r"litellm-\d+\.\d+\.\d+\S*\+[0-9a-f]{12}", bundled.price_version)
    assert bundled.price_version.startswith("litellm-1.90.7+")


def test_load_catalog_from_path(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(SYNTHETIC))
    catalog = load_catalog(path)
    assert catalog.get("openai/gpt-test") is not None
    assert re.fullmatch(r"litellm-.+\+[0-9a-f]{12}", catalog.price_version)


def test_loading_does_not_import_litellm() -> None:
    code = (
        "import sys\n"
        "from core.money.catalog import load_catalog\n"
        "assert len(load_catalog().models()) >= 100\n"
        "assert 'litellm' not in sys.modules, 'litellm was imported'\n"
        "assert 'streamlit' not in sys.modules\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_to_rows(bundled: Catalog) -> None:
    rows = bundled.to_rows()
    assert len(rows) == len(bundled.models())
    row = next(r for r in rows if r["id"] == "openai/gpt-4o")
    assert row["provider"] == "openai" and row["input_price"] == Decimal("2.5")
    assert {
        "display_name",
        "context_window",
        "max_output_tokens",
        "output_price",
        "cost_tier",
        *CAPABILITIES,
    } <= row.keys()


# --- synthetic map -------------------------------------------------------------------------


def test_unpriced_is_flagged_not_free(synthetic: Catalog) -> None:
    mystery = synthetic.get("groq/mystery")
    assert mystery is not None
    assert mystery.input_price is None and mystery.output_price is None
    assert not mystery.priced and mystery.cost_tier == "unpriced"
    half = synthetic.get("deepseek/half-priced")
    assert half is not None and half.input_price == Decimal("1") and half.output_price is None
    assert not half.priced and half.cost_tier == "unpriced"
    assert synthetic.search(tiers=["free"]) == (synthetic.get("ollama/local"),)


def test_synthetic_skips_non_chat_and_stubs(synthetic: Catalog) -> None:
    ids = {m.id for m in synthetic.models()}
    assert ids == {
        "openai/gpt-test",
        "groq/llama-test",
        "groq/mystery",
        "deepseek/half-priced",
        "cohere/command-test",
        "ollama/local",
        "anthropic/claude-test",
        "openai/streamless",
        "xai/shared-name",
        "mistral/shared-name",
    }


def test_provider_prefix_handling(synthetic: Catalog) -> None:
    groq = synthetic.get("groq/llama-test")
    assert groq is not None and groq.name == "llama-test" and groq.provider == "groq"
    assert synthetic.get("groq/groq/llama-test") is None
    cohere = synthetic.get("cohere/command-test")
    assert cohere is not None and cohere.provider == "cohere"


def test_prefixed_key_wins_over_bare_duplicate() -> None:
    catalog = Catalog(
        {
            "dup-model": _chat(litellm_provider="deepseek", input_cost_per_token=1e-06),
            "deepseek/dup-model": _chat(litellm_provider="deepseek", input_cost_per_token=2e-06),
        }
    )
    assert len(catalog.models()) == 1
    model = catalog.get("dup-model")
    assert model is not None and model.input_price == Decimal("2")
    assert model.litellm_key == "deepseek/dup-model"


def test_get_by_bare_name(synthetic: Catalog) -> None:
    assert synthetic.get("gpt-test") == synthetic.get("openai/gpt-test")
    assert synthetic.get("llama-test") == synthetic.get("groq/llama-test")
    # "shared-name" is both xai's map key and mistral's model name: the map key wins.
    shared = synthetic.get("shared-name")
    assert shared is not None and shared.id == "xai/shared-name"
    assert synthetic.get("nope") is None
    assert synthetic.get("ft:gpt-test") is None


def test_get_by_bare_name_ambiguous() -> None:
    catalog = Catalog(
        {
            "xai/twin": _chat(litellm_provider="xai"),
            "mistral/twin": _chat(litellm_provider="mistral"),
        }
    )
    assert catalog.get("twin") is None
    assert catalog.get("xai/twin") is not None


def test_capabilities_and_streaming(synthetic: Catalog) -> None:
    claude = synthetic.get("anthropic/claude-test")
    assert claude is not None and claude.assistant_prefill and claude.vision
    assert not claude.tools and not claude.json_mode and claude.streaming
    streamless = synthetic.get("openai/streamless")
    assert streamless is not None and not streamless.streaming


def test_search_filters(synthetic: Catalog) -> None:
    assert {m.id for m in synthetic.search("LLAMA-T")} == {"groq/llama-test"}
    assert {m.id for m in synthetic.search("(ollama)")} == {"ollama/local"}  # display name
    assert {m.id for m in synthetic.search(providers=["groq"])} == {
        "groq/llama-test",
        "groq/mystery",
    }
    assert {m.id for m in synthetic.search(capabilities=["vision"])} == {
        "openai/gpt-test",
        "anthropic/claude-test",
    }
    assert {m.id for m in synthetic.search(capabilities=["tools", "json_mode"])} == {
        "openai/gpt-test"
    }
    assert {m.id for m in synthetic.search(tiers=["high"])} == {
        "anthropic/claude-test",
        "openai/streamless",
    }
    assert {
        m.id for m in synthetic.search(query="test", providers=["openai", "groq"], tiers=["low"])
    } == {"groq/llama-test"}
    assert synthetic.search() == synthetic.models()


def test_search_max_price_excludes_unpriced(synthetic: Catalog) -> None:
    cheap = {m.id for m in synthetic.search(max_input_price=Decimal("1"))}
    assert cheap == {
        "groq/llama-test",
        "cohere/command-test",
        "ollama/local",
        "deepseek/half-priced",
        "xai/shared-name",
        "mistral/shared-name",
    }
    assert "groq/mystery" not in {m.id for m in synthetic.search(max_input_price=Decimal(10**9))}


def test_search_rejects_unknown_filters(synthetic: Catalog) -> None:
    with pytest.raises(ValueError):
        synthetic.search(capabilities=["telepathy"])
    with pytest.raises(ValueError):
        synthetic.search(tiers=["cheap"])


# --- prices and tiers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("per_token", "expected"),
    [
        (2.5e-06, "2.5"),
        (1e-05, "10"),
        (1.1e-06, "1.1"),
        (1.5e-07, "0.15"),
        (3e-08, "0.03"),
        (0.0, "0"),
        (0, "0"),
        (6e-05, "60"),
    ],
)
def test_per_million_is_exact(per_token: float, expected: str) -> None:
    result = per_million(per_token)
    assert result == Decimal(expected) and str(result) == expected


@pytest.mark.parametrize("bad", [None, "0.1", True, -1e-06, [1], float("nan"), float("inf")])
def test_per_million_rejects_unknown(bad: object) -> None:
    assert per_million(bad) is None


def test_tier_bands_constant() -> None:
    assert isinstance(TIER_BANDS, tuple)
    assert [t for t, _ in TIER_BANDS] == ["low", "medium", "high"]


@pytest.mark.parametrize(
    ("inp", "out", "tier"),
    [
        ("0", "0", "free"),
        ("0", "0.01", "low"),  # only both-zero counts as free
        ("0.999", "1", "low"),  # blended 0.99925
        ("1", "1", "medium"),  # blended exactly 1
        ("0.5", "2.5", "medium"),  # blended exactly 1
        ("9.999", "10", "medium"),  # blended 9.99925
        ("10", "10", "high"),  # blended exactly 10
        ("2.5", "32.5", "high"),  # blended exactly 10
        (None, "1", "unpriced"),
        ("1", None, "unpriced"),
        (None, None, "unpriced"),
    ],
)
def test_tier_band_edges(inp: str | None, out: str | None, tier: str) -> None:
    def to_dec(s: str | None) -> Decimal | None:
        return None if s is None else Decimal(s)

    assert cost_tier(to_dec(inp), to_dec(out)) == tier


# --- provider key metadata -----------------------------------------------------------------


def test_provider_key_metadata_is_immutable_and_complete() -> None:
    keyed = set(REQUIRED_PROVIDERS) - {"ollama"}
    assert set(PROVIDER_KEY_ENV) == keyed and "ollama" not in PROVIDER_KEY_ENV
    assert set(PROVIDER_KEY_URL) == keyed
    assert all(url.startswith("https://") for url in PROVIDER_KEY_URL.values())
    assert PROVIDER_KEY_ENV["perplexity"] == "PERPLEXITYAI_API_KEY"
    assert PROVIDER_KEY_ENV["together_ai"] == "TOGETHERAI_API_KEY"
    assert PROVIDER_KEY_PREFIX == {
        "openai": "sk-",
        "anthropic": "sk-ant-",
        "groq": "gsk_",
        "xai": "xai-",
        "openrouter": "sk-or-",
    }
    for mapping in (PROVIDER_KEY_ENV, PROVIDER_KEY_URL, PROVIDER_KEY_PREFIX):
        with pytest.raises(TypeError):
            mapping["new"] = "x"  # type: ignore[index]


def test_model_info_is_frozen(synthetic: Catalog) -> None:
    model = synthetic.models()[0]
    with pytest.raises(AttributeError):
        model.id = "x"  # type: ignore[misc]
