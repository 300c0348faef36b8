"""Offline model catalog built from litellm's bundled price map.

The map (``model_prices_and_context_window_backup.json`` inside the installed litellm
package) is located with ``importlib.util.find_spec`` and read as plain JSON: importing
litellm costs seconds, and the catalog must load in well under that. Nothing is cached at
module level; the caller holds the :class:`Catalog`.

Prices are USD per 1M tokens as exact ``Decimal``s: litellm's float per-token costs are
converted with ``Decimal(repr(x)) * 1_000_000``, never with float arithmetic.

Cost tiers use a blended price per 1M tokens, ``(3 * input + output) / 4`` (a typical
3:1 prompt-to-completion mix), with the bands in :data:`TIER_BANDS`:

* ``free``     - both prices are explicitly 0 (e.g. local ollama models);
* ``low``      - blended < $1;
* ``medium``   - $1 <= blended < $10;
* ``high``     - blended >= $10;
* ``unpriced`` - input or output price unknown. Unpriced models are never treated as free.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

BUNDLED_MAP_NAME: Final = "model_prices_and_context_window_backup.json"

# (tier, exclusive upper bound of the blended per-1M price); None = no upper bound.
TIER_BANDS: Final[tuple[tuple[str, Decimal | None], ...]] = (
    ("low", Decimal("1")),
    ("medium", Decimal("10")),
    ("high", None),
)
COST_TIERS: Final[tuple[str, ...]] = ("free", "low", "medium", "high", "unpriced")
CAPABILITIES: Final = ("vision", "tools", "json_mode", "streaming", "assistant_prefill")

PROVIDER_KEY_ENV: Final[Mapping[str, str]] = MappingProxyType(
    {
        "openai": "OPENAI_API_KEY",
        "anthropic": "ANTHROPIC_API_KEY",
        "gemini": "GEMINI_API_KEY",
        "mistral": "MISTRAL_API_KEY",
        "deepseek": "DEEPSEEK_API_KEY",
        "xai": "XAI_API_KEY",
        "groq": "GROQ_API_KEY",
        "cohere": "COHERE_API_KEY",
        "perplexity": "PERPLEXITYAI_API_KEY",
        "openrouter": "OPENROUTER_API_KEY",
        "together_ai": "TOGETHERAI_API_KEY",
    }
)
# Providers the product supports first-class; ollama runs locally and needs no key.
REQUIRED_PROVIDERS: Final[tuple[str, ...]] = (*PROVIDER_KEY_ENV, "ollama")
PROVIDER_KEY_URL: Final[Mapping[str, str]] = MappingProxyType(
    {
        "openai": "https://platform.openai.com/api-keys",
        "anthropic": "https://console.anthropic.com/settings/keys",
        "gemini": "https://aistudio.google.com/app/apikey",
        "mistral": "https://console.mistral.ai/api-keys",
        "deepseek": "https://platform.deepseek.com/api_keys",
        "xai": "https://console.x.ai",
        "groq": "https://console.groq.com/keys",
        "cohere": "https://dashboard.cohere.com/api-keys",
        "perplexity": "https://www.perplexity.ai/settings/api",
        "openrouter": "https://openrouter.ai/keys",
        "together_ai": "https://api.together.ai/settings/api-keys",
    }
)
# openai's "sk-" also prefixes anthropic and openrouter keys: callers should match longest first.
PROVIDER_KEY_PREFIX: Final[Mapping[str, str]] = MappingProxyType(
    {
        "openai": "sk-",
        "anthropic": "sk-ant-",
        "groq": "gsk_",
        "xai": "xai-",
        "openrouter": "sk-or-",
    }
)
# Only names the fallback ("together_ai" -> "Together AI") would get wrong.
PROVIDER_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "openai": "OpenAI",
        "gemini": "Google Gemini",
        "deepseek": "DeepSeek",
        "xai": "xAI",
        "openrouter": "OpenRouter",
        "azure": "Azure OpenAI",
        "bedrock": "AWS Bedrock",
    }
)

# litellm_provider values that are not routable prefixes themselves.
_PROVIDER_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "cohere_chat": "cohere",  # litellm routes cohere/ and cohere_chat/ to the same handler
        "bedrock_converse": "bedrock",  # bedrock/<model> picks the converse route itself
    }
)
# Pricing pseudo-entries (fine-tune templates, size bands), not callable models.
_SKIP_KEY_PREFIXES: Final[tuple[str, ...]] = ("ft:", "together-ai-")
_PER_MILLION: Final = Decimal(1_000_000)


def normalize_provider(litellm_provider: str) -> str:
    """Map a litellm provider name to the name used in catalog ids."""
    if litellm_provider.startswith("vertex_ai-"):  # e.g. vertex_ai-anthropic_models
        return "vertex_ai"
    return _PROVIDER_ALIASES.get(litellm_provider, litellm_provider)


def _number(value: object) -> float | int | None:
    # bool is an int subclass, and json.loads accepts NaN/Infinity.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) and value >= 0 else None


def per_million(value: object) -> Decimal | None:
    """Exact per-1M-token Decimal from litellm's per-token number, None if unknown."""
    value = _number(value)
    if value is None:
        return None
    exact = Decimal(repr(value)) * _PER_MILLION
    normal = exact.normalize()  # 2.5000000 -> 2.5, but 1E+1 must become 10 again
    exponent = normal.as_tuple().exponent
    return normal.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else normal


def cost_tier(input_price: Decimal | None, output_price: Decimal | None) -> str:
    """Tier for a price pair; see the module docstring for the bands."""
    if input_price is None or output_price is None:
        return "unpriced"
    if input_price == 0 and output_price == 0:
        return "free"
    blended = (3 * input_price + output_price) / 4
    for tier, upper in TIER_BANDS:
        if upper is None or blended < upper:
            return tier
    return TIER_BANDS[-1][0]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One chat model. Prices are USD per 1M tokens; None means unknown, never free."""

    id: str
    provider: str
    name: str
    display_name: str
    context_window: int | None
    max_output_tokens: int | None
    input_price: Decimal | None
    output_price: Decimal | None
    cache_read_price: Decimal | None = None
    cache_write_price: Decimal | None = None
    reasoning_price: Decimal | None = None
    vision: bool = False
    tools: bool = False
    json_mode: bool = False
    streaming: bool = True
    assistant_prefill: bool = False
    litellm_key: str = ""  # the key in litellm's map, for cost look-ups

    @property
    def priced(self) -> bool:
        return self.input_price is not None and self.output_price is not None

    @property
    def cost_tier(self) -> str:
        return cost_tier(self.input_price, self.output_price)

    def has(self, capability: str) -> bool:
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}; expected one of {CAPABILITIES}")
        return bool(getattr(self, capability))


def _int(value: object) -> int | None:
    number = _number(value)  # a few entries carry floats such as 2000000.0
    return int(number) if number else None


def _split_key(key: str, provider: str, litellm_provider: str) -> str:
    """Model part of a map key: drop the provider prefix when the key already carries it."""
    head, sep, rest = key.partition("/")
    if sep and head.replace("-", "_") in {provider, litellm_provider}:  # amazon-nova/...
        return rest
    return key


def _display_name(name: str, provider: str) -> str:
    short = name.rsplit("/models/", 1)[-1]  # fireworks: accounts/fireworks/models/<model>
    fallback = " ".join(w.upper() if w == "ai" else w.capitalize() for w in provider.split("_"))
    label = PROVIDER_LABELS.get(provider, fallback)
    return f"{short} ({label})"


def model_from_entry(key: str, entry: Mapping[str, Any]) -> ModelInfo | None:
    """Build a ModelInfo from one map entry, or None if it is not a callable chat model."""
    raw_provider = entry.get("litellm_provider")
    if entry.get("mode") != "chat" or not isinstance(raw_provider, str):
        return None
    if key.startswith(_SKIP_KEY_PREFIXES) or "*" in key or "-commitment/" in key:
        return None  # pricing templates / provisioned-throughput rows
    provider = normalize_provider(raw_provider)
    name = _split_key(key, provider, raw_provider)
    context = _int(entry.get("max_input_tokens")) or _int(entry.get("max_tokens"))
    input_price = per_million(entry.get("input_cost_per_token"))
    output_price = per_million(entry.get("output_cost_per_token"))
    if (
        context is None
        and input_price is None
        and output_price is None
        and not any(f.startswith("supports_") for f in entry)
    ):
        return None  # billing stubs such as openai/container (only a per-session fee)
    return ModelInfo(
        id=f"{provider}/{name}",
        provider=provider,
        name=name,
        display_name=_display_name(name, provider),
        context_window=context,
        max_output_tokens=_int(entry.get("max_output_tokens")),
        input_price=input_price,
        output_price=output_price,
        cache_read_price=per_million(entry.get("cache_read_input_token_cost")),
        cache_write_price=per_million(entry.get("cache_creation_input_token_cost")),
        reasoning_price=per_million(entry.get("output_cost_per_reasoning_token")),
        vision=entry.get("supports_vision") is True,
        tools=entry.get("supports_function_calling") is True,
        json_mode=entry.get("supports_response_schema") is True
        or entry.get("supports_native_structured_output") is True,
        # Only o1-pro-style responses-API models say False; litellm fakes their streams.
        streaming=entry.get("supports_native_streaming") is not False,
        assistant_prefill=entry.get("supports_assistant_prefill") is True,
        litellm_key=key,
    )


class Catalog:
    """Immutable view over the chat models of a litellm-style price map."""

    def __init__(self, price_map: Mapping[str, Any], price_version: str = "custom") -> None:
        self.price_version: Final = price_version
        by_id: dict[str, ModelInfo] = {}
        for key, entry in price_map.items():
            model = model_from_entry(key, entry) if isinstance(entry, Mapping) else None
            if model is None:
                continue
            # Bare and prefixed keys can collide ("deepseek-chat" vs "deepseek/deepseek-chat");
            # the key spelled exactly like the id is the one litellm prices that id by.
            old = by_id.get(model.id)
            if old is None or (key == model.id and old.litellm_key != old.id):
                by_id[model.id] = model
        self._models = tuple(
            sorted(by_id.values(), key=lambda m: (m.provider, m.name.lower(), m.name))
        )
        self._by_id: Mapping[str, ModelInfo] = MappingProxyType(by_id)
        self._aliases: Mapping[str, str] = MappingProxyType(self._build_aliases())

    def _build_aliases(self) -> dict[str, str]:
        # Map keys are unique, so they always resolve; bare names only when one model has it.
        aliases = {m.litellm_key: m.id for m in self._models if m.litellm_key != m.id}
        owners: dict[str, set[str]] = {}
        for m in self._models:
            owners.setdefault(m.name, set()).add(m.id)
        for name, ids in owners.items():
            if len(ids) == 1 and name not in aliases and name not in self._by_id:
                aliases[name] = next(iter(ids))
        return aliases

    def __len__(self) -> int:
        return len(self._models)

    def models(self) -> tuple[ModelInfo, ...]:
        return self._models

    def providers(self) -> tuple[str, ...]:
        return tuple(sorted({m.provider for m in self._models}))

    def get(self, model_id: str) -> ModelInfo | None:
        """Look up by catalog id, litellm map key, or unambiguous bare model name."""
        found = self._by_id.get(model_id)
        if found is None and model_id in self._aliases:
            found = self._by_id[self._aliases[model_id]]
        return found

    def search(
        self,
        query: str = "",
        providers: Collection[str] = (),
        capabilities: Collection[str] = (),
        tiers: Collection[str] = (),
        max_input_price: Decimal | None = None,
    ) -> tuple[ModelInfo, ...]:
        """Filter models; every given criterion must hold. A price cap excludes unpriced."""
        bad = [c for c in capabilities if c not in CAPABILITIES]
        bad += [t for t in tiers if t not in COST_TIERS]
        if bad:
            raise ValueError(f"unknown capability or tier: {bad}")
        needle = query.strip().lower()
        wanted = {normalize_provider(p) for p in providers}
        result = []
        for m in self._models:
            if needle and needle not in m.id.lower() and needle not in m.display_name.lower():
                continue
            if wanted and m.provider not in wanted:
                continue
            if not all(m.has(c) for c in capabilities):
                continue
            if tiers and m.cost_tier not in tiers:
                continue
            if max_input_price is not None and (
                m.input_price is None or m.input_price > max_input_price
            ):
                continue
            result.append(m)
        return tuple(result)

    def to_rows(self, models: Iterable[ModelInfo] | None = None) -> list[dict[str, object]]:
        """Plain dicts (one per model; all, or the given ones) for the Models page's table."""
        return [
            {
                "id": m.id,
                "provider": m.provider,
                "display_name": m.display_name,
                "context_window": m.context_window,
                "max_output_tokens": m.max_output_tokens,
                "input_price": m.input_price,
                "output_price": m.output_price,
                "cost_tier": m.cost_tier,
                "priced": m.priced,
                **{c: getattr(m, c) for c in CAPABILITIES},
            }
            for m in (self._models if models is None else models)
        ]


def bundled_map_path() -> Path:
    """Path of litellm's bundled price map, found without importing litellm."""
    spec = importlib.util.find_spec("litellm")  # top-level spec lookup does not import it
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("litellm is not installed")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / BUNDLED_MAP_NAME
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{BUNDLED_MAP_NAME} not found in the litellm package")


def load_catalog(path: Path | None = None) -> Catalog:
    """Read a price map (litellm's bundled one by default) into a Catalog."""
    raw = (path or bundled_map_path()).read_bytes()
    try:
        version = importlib.metadata.version("litellm")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    price_map = json.loads(raw)
    if not isinstance(price_map, Mapping):
        raise ValueError("price map must be a JSON object")
    return Catalog(price_map, f"litellm-{version}+{hashlib.sha256(raw).hexdigest()[:12]}")
