"""How Switchboard calls litellm: quietly, through litellm's own HTTP handler, unlogged.

For each call, litellm does work for features Switchboard does not use:
- success logging re-prices every answer for callbacks nobody registered;
- its response metadata (``_hidden_params``) prices the answer again and copies headers.

The ledger prices every call itself (core/money/pricing.py), so both are skipped. Our calls
carry litellm's internal-call flag, and only flagged calls skip them: other code in the
process that calls litellm keeps litellm's behaviour, except for sub-calls litellm
itself flags as internal (its emulated file search, which Switchboard does not use).
Counted with bench/api_instructions.py, the metadata alone was 1.0-1.3 of ~10 million
instructions a `/v1` request.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from core.request import RequestIds

CompletionFn = Callable[..., Awaitable[Any]]

# litellm's switch between the OpenAI SDK and its own HTTP handler for the OpenAI family.
OWN_HTTP_ENV = "EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER"

# Set on the replacement so that installing it twice (a gateway per test) wraps once.
_MARK = "switchboard_skips_internal_calls"


def prefer_litellm_own_http(environ: MutableMapping[str, str] = os.environ) -> None:
    """Call OpenAI-family models through litellm's own HTTP handler, not the OpenAI SDK.

    The SDK's request transform and response models cost about 0.9 ms of CPU a call
    (bench/api_http); litellm's handler, which its Anthropic calls already use, does
    the same translation without them. An operator's own setting wins, so
    ``EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER=false`` goes back to the SDK.
    """
    environ.setdefault(OWN_HTTP_ENV, "true")


def openai_via_sdk() -> bool:
    """Whether litellm will call OpenAI-family models through the SDK (read as litellm does)."""
    from litellm.secret_managers.main import get_secret_bool

    return not get_secret_bool(OWN_HTTP_ENV)


def skip_response_metadata_for_internal_calls() -> None:
    """Make litellm leave ``_hidden_params`` unset on calls flagged as internal.

    litellm looks its ``update_response_metadata`` up on its ``utils`` module at every
    call, so a replacement there takes effect at once. Unflagged calls go to the
    original. tests/test_litellm_calls.py fails if a litellm upgrade moves it.
    """
    from litellm._internal_context import is_internal_call

    utils: Any = importlib.import_module("litellm.utils")
    original = utils.update_response_metadata
    if getattr(original, _MARK, False):
        return

    def update_response_metadata(*args: Any, **kwargs: Any) -> None:
        if not is_internal_call.get():
            original(*args, **kwargs)

    setattr(update_response_metadata, _MARK, True)
    utils.update_response_metadata = update_response_metadata


def default_completion() -> CompletionFn:
    """litellm.acompletion, minus litellm's per-call logging and response metadata."""
    import litellm
    from litellm._internal_context import is_internal_call

    from core.accounts.secrets import quiet_litellm

    quiet_litellm()  # before the first call: litellm prints help banners and debug by default
    prefer_litellm_own_http()
    skip_response_metadata_for_internal_calls()
    call_ids = RequestIds()

    async def acompletion(**kwargs: Any) -> Any:
        # The internal-call flag skips litellm's success logging (~0.2 ms CPU) and, with
        # the replacement above, its response metadata. A call id of ours spares it a
        # uuid4 (an os.urandom).
        flag = is_internal_call.set(True)
        try:
            return await litellm.acompletion(litellm_call_id=call_ids.new(), **kwargs)
        finally:
            is_internal_call.reset(flag)

    return acompletion
