"""The "Test" button: one minimal real call through the gateway with exactly one key.

The request asks a cheap model of the provider (or the endpoint's first model) for
one token, restricted to the key under test (``ChatRequest.key_sources``), and the
outcome is put in plain words: invalid key, no network, model not found, …
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from core.errors import InvalidInput, SwitchboardError
from core.money.catalog import Catalog
from core.request import Attempt, Caller, ChatRequest, Done, StreamEvent, Summary
from core.settings.endpoints import EndpointInfo

# A cheap, long-lived model per provider; others use their cheapest priced catalog model.
TEST_MODELS: Final[Mapping[str, str]] = {
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-3-haiku-20240307",
}
TEST_TASK: Final = "key-test"


@dataclass(frozen=True)
class KeyTestResult:
    ok: bool
    model: str
    latency_ms: int
    message: str  # plain words, never the key


def pick_test_model(provider: str, catalog: Catalog, endpoints: Iterable[EndpointInfo]) -> str:
    """The model a key test asks: known cheap model, endpoint's first, or cheapest priced."""
    for e in endpoints:
        if e.name == provider and e.kind == "openai-compatible":
            if not e.models:
                raise InvalidInput(
                    f"Endpoint {provider!r} lists no models, so there is nothing to test. "
                    "Add a model to it first."
                )
            return f"{e.name}/{e.models[0]}"
    if provider in TEST_MODELS and catalog.get(TEST_MODELS[provider]) is not None:
        return TEST_MODELS[provider]
    priced = [m for m in catalog.models() if m.provider == provider and m.priced and m.streaming]
    if not priced:
        raise InvalidInput(f"The catalog has no priced model of {provider!r} to test with.")
    cheapest = min(
        priced,
        key=lambda m: ((m.input_price or Decimal(0)) * 3 + (m.output_price or Decimal(0)), m.id),
    )
    return cheapest.id


def key_test_request(
    caller: Caller, model: str, key_source: str | None, profile: str | None = None
) -> ChatRequest:
    return ChatRequest(
        caller=caller,
        messages=({"role": "user", "content": "ping"},),
        model=model,
        fallbacks=(),
        task=TEST_TASK,
        source="chat",
        stream=False,
        max_tokens=1,
        profile=profile,
        key_sources=(key_source,) if key_source else None,
    )


def explain(summary: Summary, provider: str) -> str:
    """Why a test call failed, in words a person can act on."""
    attempt: Attempt | None = summary.attempts[-1] if summary.attempts else None
    if attempt is None:
        return summary.error.message if summary.error else "The call did not complete."
    code = attempt.status_code
    text = (attempt.error_message or "").lower()
    if attempt.outcome == "no-key":
        return f"There is no key for {provider} to test. Add one first."
    if attempt.outcome == "skipped-breaker":
        return (
            f"{provider} is paused: nearly all its recent calls failed. The test can run "
            "again once the pause ends (15 seconds by default)."
        )
    if attempt.outcome == "refused-budget":
        return f"A budget refused even this tiny call: {attempt.error_message}"
    # litellm reports a refused connection as a 500 ("Connection error" through the SDK,
    # "Cannot connect to host" through its own handler): words beat the code.
    if any(
        words in text
        for words in (
            "connection error",
            "connecterror",
            "cannot connect to host",
            "name resolution",
        )
    ):
        return (
            f"No network: could not reach {provider}. Check the server's internet access, "
            "or the endpoint's base URL."
        )
    if code in (401, 403) or "api key" in text or "authentication" in text:
        return (
            f"Invalid key: {provider} refused it (HTTP {code or 'auth error'}). Check that "
            "you pasted the whole key, and that it has not been revoked."
        )
    if code == 404 or "not found" in text or "does not exist" in text:
        return (
            f"Model not found: {provider} does not offer {attempt.model} to this key or "
            "endpoint. The key itself may be fine."
        )
    if code == 429:
        return (
            f"The key works, but {provider} is rate limiting it or it is out of credit (HTTP 429)."
        )
    if attempt.outcome == "timeout":
        return f"No answer from {provider} in time: the network or the provider is slow or down."
    detail = attempt.error_message or attempt.outcome
    return f"{provider} answered with an error{f' (HTTP {code})' if code else ''}: {detail}"


def run_key_test(
    stream: Callable[[ChatRequest], Iterable[StreamEvent]],
    request: ChatRequest,
    provider: str,
) -> KeyTestResult:
    """Send the test request; never raises for upstream trouble, only reports it."""
    started = time.monotonic()
    summary: Summary | None = None
    try:
        for event in stream(request):
            if isinstance(event, Done):
                summary = event.summary
    except SwitchboardError as exc:
        ms = int((time.monotonic() - started) * 1000)
        return KeyTestResult(False, request.model, ms, exc.message)
    ms = int((time.monotonic() - started) * 1000)
    if summary is None:
        return KeyTestResult(False, request.model, ms, "The call ended without an answer.")
    if summary.error is None and summary.model is not None:
        latency = summary.latency_ms or ms
        return KeyTestResult(
            True,
            summary.model,
            latency,
            f"The key works: {summary.model} answered in {latency} ms.",
        )
    return KeyTestResult(False, request.model, summary.latency_ms or ms, explain(summary, provider))
