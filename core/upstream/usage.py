"""A call's token usage, read from litellm's objects as the ledger needs it.

litellm normalises every provider's usage to OpenAI's shape: cache reads and writes
are parts of ``prompt_tokens`` (core/money/pricing.py bills each part once). What it
does not say is whether the provider sent the usage at all: when a stream carries
none, litellm counts the tokens itself. Such usage is marked estimated, as is a cache
write whose 5-minute/1-hour split neither the provider nor the request tells.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.money.pricing import cache_ttls
from core.request import Message, Usage


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def read_usage(
    obj: Any,
    messages: Sequence[Message] = (),
    params: Mapping[str, Any] | None = None,
    *,
    reported: bool = True,
) -> Usage | None:
    """Usage as litellm normalised it; ``reported=False``: litellm counted it, not the provider.

    Anthropic's cache reads and writes are read from litellm's own fields: a stream's last
    ``prompt_tokens_details`` may hold zeros for them. When the provider does not give the
    5m/1h split of its cache writes (streams), the request's ``cache_control`` lifetimes do;
    if it asked for both, the writes are billed as 1-hour ones and marked estimated.
    """
    usage = getattr(obj, "usage", None)
    if usage is None:
        return None
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    cached = _count(getattr(usage, "cache_read_input_tokens", None)) or _count(
        getattr(prompt_details, "cached_tokens", None)
    )
    writes = _count(getattr(usage, "cache_creation_input_tokens", None)) or _count(
        getattr(prompt_details, "cache_creation_tokens", None)
    )
    writes_1h, split_known = 0, True
    if writes:
        split = getattr(prompt_details, "cache_creation_token_details", None)
        one_hour = getattr(split, "ephemeral_1h_input_tokens", None)
        if isinstance(one_hour, int):
            writes_1h = min(_count(one_hour), writes)
        else:
            ttls = cache_ttls(messages, params or {})
            writes_1h = writes if "1h" in ttls else 0
            split_known = ttls != {"1h", "5m"}
    return Usage(
        prompt_tokens=_count(getattr(usage, "prompt_tokens", 0)),
        completion_tokens=_count(getattr(usage, "completion_tokens", 0)),
        cached_tokens=cached,
        reasoning_tokens=_count(getattr(completion_details, "reasoning_tokens", 0)),
        cache_write_tokens=writes,
        cache_write_1h_tokens=writes_1h,
        estimated=not (reported and split_known),
    )


def provider_reported(response: Any) -> bool:
    """Whether the provider itself sent usage in this stream.

    litellm ends every stream with a usage chunk; when the provider sent none it counts
    the tokens itself (token_counter). Its stream wrapper keeps the chunks it received,
    and only the provider's own usage chunks carry usage there. Anything else (an
    injected completion function) is taken at its word.
    """
    chunks = getattr(response, "chunks", None)
    if not isinstance(chunks, list):
        return True
    return any(getattr(chunk, "usage", None) is not None for chunk in chunks)
