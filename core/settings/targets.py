"""From a model id to a concrete upstream target: provider, litellm model, base URL.

Catalog models are ``provider/model``; admin endpoints are ``<endpoint>/<model>``
and speak the OpenAI wire format. An "override" endpoint keeps a built-in
provider's models and prices but sends them to another base URL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.errors import NotFound
from core.money.catalog import Catalog, ModelInfo
from core.settings.endpoints import EndpointInfo
from core.settings.local_servers import LOCAL_SERVERS

# Providers that run locally and need no key (available only with a server: local_servers).
KEYLESS_PROVIDERS = frozenset(LOCAL_SERVERS)
# litellm's OpenAI client insists on some key even for keyless OpenAI-compatible servers.
PLACEHOLDER_KEY = "sk-no-key-required"
DEFAULT_MAX_OUTPUT = 4096


@dataclass(frozen=True)
class Target:
    model_id: str  # as the caller and the ledger name it
    provider: str  # key and budget scope: built-in provider or endpoint name
    litellm_model: str
    api_base: str | None
    info: ModelInfo | None  # None for endpoint models (unpriced unless overridden)
    supports_prefill: bool
    key_required: bool

    @property
    def context_window(self) -> int | None:
        return self.info.context_window if self.info else None

    @property
    def max_output_tokens(self) -> int:
        found = self.info.max_output_tokens if self.info else None
        return found or DEFAULT_MAX_OUTPUT


class TargetResolver:
    """Immutable view over the catalog and the endpoints, rebuilt when endpoints change."""

    def __init__(self, catalog: Catalog, endpoints: Sequence[EndpointInfo]) -> None:
        self._catalog = catalog
        self._endpoints: Mapping[str, EndpointInfo] = {
            e.name: e for e in endpoints if e.kind == "openai-compatible"
        }
        self._overrides: Mapping[str, EndpointInfo] = {
            e.name: e for e in endpoints if e.kind == "override"
        }

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def providers(self) -> tuple[str, ...]:
        """Every provider a model can come from: the catalog's and each endpoint's name."""
        return tuple(sorted({*self._catalog.providers(), *self._endpoints}))

    def endpoint_models(self) -> tuple[str, ...]:
        return tuple(f"{e.name}/{m}" for e in self._endpoints.values() for m in e.models)

    def known(self, model_id: str) -> bool:
        try:
            self.resolve(model_id)
        except NotFound:
            return False
        return True

    def resolve(self, model_id: str) -> Target:
        head, sep, rest = model_id.partition("/")
        endpoint = self._endpoints.get(head) if sep else None
        if endpoint is not None:
            if rest not in endpoint.models:
                raise NotFound(
                    f"Endpoint {head!r} has no model {rest!r}. Its models: "
                    f"{', '.join(endpoint.models) or 'none'}; an admin can add more."
                )
            return Target(
                model_id=model_id,
                provider=endpoint.name,
                litellm_model=f"openai/{rest}",
                api_base=endpoint.api_base,
                info=None,
                supports_prefill=endpoint.supports_prefill,
                key_required=False,
            )
        info = self._catalog.get(model_id)
        if info is None:
            raise NotFound(
                f"Unknown model {model_id!r}. `switchboard models` (or the Models page) lists "
                "the catalog; endpoint models are addressed as <endpoint>/<model>."
            )
        override = self._overrides.get(info.provider)
        return Target(
            model_id=info.id,
            provider=info.provider,
            litellm_model=_litellm_name(info),
            api_base=override.api_base if override else None,
            info=info,
            supports_prefill=info.assistant_prefill or bool(override and override.supports_prefill),
            key_required=info.provider not in KEYLESS_PROVIDERS,
        )


def _litellm_name(info: ModelInfo) -> str:
    # litellm routes on its own provider names; ours differ only for cohere.
    if info.provider == "cohere":
        return f"cohere_chat/{info.name}"
    return info.id
