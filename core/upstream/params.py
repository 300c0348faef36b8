"""Which request fields a model takes, from litellm's per-model data, and what to do with
the rest.

Every field of a chat request is handled on purpose:

* an OpenAI field the model takes (``litellm.get_supported_openai_params``) is forwarded;
* an OpenAI field it does not take is refused, or dropped when the caller (the
  ``drop_params`` field) or the route asks for that; a dropped field is listed;
* any other field is a provider extra (``top_k``, vLLM's ``chat_template_kwargs``) and
  reaches the provider's request body, unless it names one of litellm's own settings
  (keys, URLs, prices, callbacks): those are never a caller's to set.

An admin's openai-compatible endpoint takes every OpenAI field: the server behind it
(vLLM, SGLang, llama.cpp ...) is not in litellm's data, and says itself what it refuses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Fields of ours, or litellm's client settings, that never pass from a caller upstream.
NOT_FORWARDED = frozenset(
    {
        "api_base", "api_key", "api_version", "base_url", "default_headers", "deployment_id",
        "extra_headers", "max_retries", "organization", "request_timeout", "timeout",
        "stream", "stream_options", "max_tokens", "max_completion_tokens", "messages", "model",
    }
)  # fmt: skip
# OpenAI fields litellm 1.90 lists for OpenAI models but leaves out of the request it
# sends (acompletion never hands them on): they travel in extra_body instead, which
# litellm merges into the JSON body. tests/test_api_params.py fails if that changes.
LITELLM_LOSES = frozenset({"store", "prompt_cache_key", "prompt_cache_retention", "verbosity"})
# Extras that would configure where or as whom litellm calls, whatever the provider.
_SETTING_LIKE = re.compile(r"key|secret|token|credential|password|url|base|endpoint|header|auth")


@dataclass(frozen=True)
class ParamPlan:
    """One model's view of the request's fields."""

    params: Mapping[str, Any] = field(default_factory=dict)  # what goes upstream
    dropped: tuple[str, ...] = ()  # OpenAI fields the model does not take, left out
    refused: tuple[str, ...] = ()  # the same, when nobody asked to drop them


def not_forwarded_reason(name: str) -> str | None:
    """Why a request field may never go upstream, or None when it may."""
    if name in NOT_FORWARDED:
        return f"`{name}` is set by Switchboard, not by a request; remove it."
    from litellm.constants import OPENAI_CHAT_COMPLETION_PARAMS
    from litellm.types.utils import all_litellm_params

    if name in OPENAI_CHAT_COMPLETION_PARAMS:
        return None  # a model parameter, whatever its name says
    if name in all_litellm_params or _SETTING_LIKE.search(name):
        return (
            f"`{name}` is a client setting, not a model parameter, and Switchboard does not "
            "pass it on; remove it."
        )
    return None


class ParamPolicy:
    """Plans each model's fields; litellm's per-model lists are read once per model."""

    def __init__(self) -> None:
        self._supported: dict[str, frozenset[str] | None] = {}
        self._standard: frozenset[str] | None = None

    def standard(self) -> frozenset[str]:
        """Every OpenAI chat-completions field litellm knows."""
        if self._standard is None:
            from litellm.constants import OPENAI_CHAT_COMPLETION_PARAMS

            self._standard = frozenset(OPENAI_CHAT_COMPLETION_PARAMS)
        return self._standard

    def supported(self, litellm_model: str) -> frozenset[str] | None:
        """The OpenAI fields litellm maps for this model; None when it cannot say."""
        if litellm_model not in self._supported:
            import litellm

            try:
                model, provider, _, _ = litellm.get_llm_provider(litellm_model)
                found = litellm.get_supported_openai_params(model, provider)
            except Exception:  # litellm raises for providers it cannot map
                found = None
            self._supported[litellm_model] = frozenset(found) if found is not None else None
        return self._supported[litellm_model]

    def plan(
        self, litellm_model: str, params: Mapping[str, Any], *, endpoint: bool, drop: bool
    ) -> ParamPlan:
        """Which of ``params`` go to the model, which are dropped, which refused.

        ``endpoint``: an admin's openai-compatible endpoint, which takes every field.
        """
        standard = self.standard()
        supported = None if endpoint else self.supported(litellm_model)
        openai_family = endpoint or litellm_model.startswith(("openai/", "hosted_vllm/"))
        out: dict[str, Any] = {}
        extras: dict[str, Any] = {}
        unsupported: list[str] = []
        for name, value in params.items():
            if name not in standard:
                extras[name] = value
            elif supported is not None and name not in supported:
                unsupported.append(name)
            elif openai_family and name in LITELLM_LOSES:
                extras[name] = value
            else:
                out[name] = value
        if extras:
            # litellm puts an OpenAI-family model's extra_body into the JSON body; other
            # providers take provider-specific fields as keyword arguments.
            if openai_family:
                out["extra_body"] = extras
            else:
                out.update(extras)
        if endpoint and out:
            # litellm would refuse fields it does not list for a generic OpenAI model
            # (reasoning_effort); the endpoint's server is the judge of those.
            out["allowed_openai_params"] = sorted(n for n in params if n in standard)
        names = tuple(sorted(unsupported))
        return ParamPlan(out, names, ()) if drop else ParamPlan(out, (), names)
