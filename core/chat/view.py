"""Words the chat page shows: answer badges, fallback notices, error advice, cost captions.

Pure functions over plain data (a Summary, or the ``details`` dict stored with each
answer), so the badge of a reopened conversation reads exactly like a fresh one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from core.errors import (
    AllModelsFailed,
    BudgetExceeded,
    ContentRefused,
    ContextTooLong,
    NoKey,
    RateLimited,
    SwitchboardError,
    UpstreamTimeout,
)
from core.money.budgets import usd
from core.request import CostEstimate, Summary

# Attempt outcomes other than "ok", in words.
_OUTCOME_WORDS: Final = {
    "timeout": "timed out",
    "cut": "stream cut off",
    "no-key": "no API key",
    "skipped-breaker": "skipped, circuit open: nearly all its recent calls failed",
    "skipped-context": "prompt too long for it",
    "refused-budget": "over budget",
    "stopped": "stopped",
}
_STATUS_WORDS: Final = {
    401: "key rejected (401)",
    403: "access denied (403)",
    404: "model not found (404)",
    408: "request timeout (408)",
    429: "rate limited",
    500: "server error (500)",
    502: "bad gateway (502)",
    503: "unavailable (503)",
    504: "gateway timeout (504)",
    529: "overloaded (529)",
}


def short_model(model_id: str | None) -> str:
    """``openai/gpt-4o`` -> ``gpt-4o`` (the provider is noise in a sentence)."""
    if not model_id:
        return "no model"
    return model_id.split("/", 1)[1] if "/" in model_id else model_id


def money(micros: int | None) -> str:
    """A cost for people; None means the price is unknown, never $0."""
    return "unpriced" if micros is None else usd(micros)


def details_of(summary: Summary) -> dict[str, Any]:
    """What an answer stores for its badge (JSON-safe; error text is already redacted)."""
    # A cut answer that no model finished has no served model; name the one that wrote it.
    model = summary.model or next(
        (a.model for a in reversed(summary.attempts) if a.usage.completion_tokens), None
    )
    return {
        "model": model,
        "status": summary.status,
        "prompt_tokens": summary.usage.prompt_tokens,
        "completion_tokens": summary.usage.completion_tokens,
        "cost_micros": summary.cost_micros,
        "latency_ms": summary.latency_ms,
        "ttft_ms": summary.ttft_ms,
        "fallback_used": summary.fallback_used,
        "reordered": summary.order_reason is not None,  # a cost-optimised route's order
        "error": summary.error.message if summary.error is not None else None,
        "attempts": [
            {
                "model": a.model,
                "outcome": a.outcome,
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error_message,
            }
            for a in summary.attempts
        ],
    }


def attempt_reason(attempt: Mapping[str, Any]) -> str:
    """Why one attempt did not answer, in a few words."""
    code = attempt.get("status_code")
    if isinstance(code, int) and code in _STATUS_WORDS:
        return _STATUS_WORDS[code]
    outcome = str(attempt.get("outcome", "error"))
    if outcome in _OUTCOME_WORDS:
        return _OUTCOME_WORDS[outcome]
    if isinstance(code, int):
        return f"error {code}"
    return "failed"


def badge(details: Mapping[str, Any]) -> str:
    """One line: model · tokens in/out · cost · latency · time to first token."""
    parts = [short_model(details.get("model"))]
    parts.append(
        f"{details.get('prompt_tokens', 0):,} in / {details.get('completion_tokens', 0):,} out"
    )
    cost = details.get("cost_micros")
    parts.append(money(cost if isinstance(cost, int) else None))
    parts.append(f"{details.get('latency_ms', 0):,} ms")
    ttft = details.get("ttft_ms")
    if isinstance(ttft, int):
        parts.append(f"first token {ttft:,} ms")
    return " · ".join(parts)


def fallback_notice(details: Mapping[str, Any]) -> str | None:
    """ "gpt-4o failed: rate limited; answered by claude-3-haiku", when a fallback answered."""
    answered = details.get("model")
    if not answered or not details.get("fallback_used"):
        return None
    failed: dict[str, str] = {}
    for a in details.get("attempts", ()):
        model = a.get("model")
        if model and model != answered and a.get("outcome") != "ok":
            failed[model] = attempt_reason(a)  # the last reason per model (after retries)
    cut = [
        a
        for a in details.get("attempts", ())
        if a.get("model") == answered and a.get("outcome") == "cut"
    ]
    if not failed and not cut:
        return f"Answered by fallback {short_model(answered)}."
    reasons = "; ".join(f"{short_model(m)} failed: {why}" for m, why in failed.items())
    if cut and not failed:
        reasons = f"{short_model(answered)} was cut off and continued"
    return f"{reasons}; answered by {short_model(answered)}."


def picked_notice(details: Mapping[str, Any]) -> str | None:
    """Says so when a model other than the picker's answered and no fallback notice did."""
    picked, answered = details.get("picked_model"), details.get("model")
    if not picked or not answered or picked == answered or fallback_notice(details):
        return None
    why = (
        "your route for this task is cost-optimised and ranked it first"
        if details.get("reordered")
        else "your route for this task starts with it"
    )
    return f"Answered by {short_model(answered)}, not {short_model(picked)} as picked: {why}."


def attempt_lines(attempts: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per attempt, for the attempts expander."""
    lines = []
    for i, a in enumerate(attempts, 1):
        outcome = "answered" if a.get("outcome") == "ok" else attempt_reason(a)
        line = f"{i}. {a.get('model')}: {outcome}, {a.get('latency_ms', 0):,} ms"
        if a.get("outcome") != "ok" and a.get("error"):
            line += f" ({a['error']})"
        lines.append(line)
    return lines


def error_advice(exc: SwitchboardError) -> str:
    """One clear message per kind of failure, saying what to do next."""
    match exc:
        case BudgetExceeded():
            return f"Budget refused. {exc.message}"
        case RateLimited(retry_after_s=wait):
            return (
                f"Rate limited. {exc.message} Your message is kept below: wait {wait} s, "
                "then press Send again."
            )
        case NoKey():
            return f"No API key. {exc.message}"
        case ContentRefused():
            return f"Content refused. {exc.message} Rephrase the message, or pick another model."
        case ContextTooLong():
            return f"Too long. {exc.message} Or start a new conversation."
        case UpstreamTimeout():
            return f"Timed out. {exc.message} Try again in a moment, or pick another model."
        case AllModelsFailed():
            return (
                f"No model answered. {exc.message} Try again in a moment, pick another "
                "model, or ask an admin to add a fallback to your route."
            )
    return exc.message


def estimate_caption(
    estimate: CostEstimate, remaining_micros: int | None, tokens_so_far: int = 0
) -> str:
    """Before sending: the next message's cost range and what is left of the budget.

    ``tokens_so_far`` is what the conversation (and system prompt) already brings; it is
    named only once there is something, never for an empty chat.
    """
    if estimate.low_micros is not None and estimate.high_micros is not None:
        cost = f"Next message: about {usd(estimate.low_micros)}–{usd(estimate.high_micros)}"
    else:
        cost = "Next message: cost unknown"
    if tokens_so_far:
        cost += f" ({tokens_so_far:,} prompt tokens so far)"
    if estimate.unpriced_models:
        names = ", ".join(short_model(m) for m in estimate.unpriced_models)
        cost += f" · unpriced: {names}"
    budget = (
        "no hard budget"
        if remaining_micros is None
        else f"{usd(remaining_micros)} left in your budget"
    )
    return f"{cost} · {budget}"


def needs_confirmation(estimate: CostEstimate, threshold_micros: int) -> bool:
    """A known worst case above the user's threshold must be confirmed before sending."""
    return estimate.high_micros is not None and estimate.high_micros > threshold_micros
