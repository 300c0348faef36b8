"""The chat page's words: badges, fallback notices, error advice and cost captions."""

from __future__ import annotations

from core.chat import view
from core.errors import (
    AllModelsFailed,
    BudgetExceeded,
    ContentRefused,
    NoKey,
    RateLimited,
    UpstreamTimeout,
)
from core.request import CostEstimate

FALLBACK = {
    "model": "anthropic/claude-3-5-haiku-20241022",
    "prompt_tokens": 1200,
    "completion_tokens": 340,
    "cost_micros": 2_310,
    "latency_ms": 1820,
    "ttft_ms": 410,
    "fallback_used": True,
    "attempts": [
        {"model": "openai/gpt-4o", "outcome": "error", "status_code": 429, "latency_ms": 30},
        {"model": "openai/gpt-4o", "outcome": "error", "status_code": 429, "latency_ms": 25},
        {"model": "anthropic/claude-3-5-haiku-20241022", "outcome": "ok", "latency_ms": 1700},
    ],
}


def test_badge_names_model_tokens_cost_and_speed() -> None:
    assert view.badge(FALLBACK) == (
        "claude-3-5-haiku-20241022 · 1,200 in / 340 out · $0.0023 · 1,820 ms · first token 410 ms"
    )
    unpriced = {**FALLBACK, "cost_micros": None, "ttft_ms": None}
    assert "unpriced" in view.badge(unpriced) and "$0" not in view.badge(unpriced)


def test_fallback_notice_says_who_failed_and_why() -> None:
    assert view.fallback_notice(FALLBACK) == (
        "gpt-4o failed: rate limited; answered by claude-3-5-haiku-20241022."
    )
    assert view.fallback_notice({**FALLBACK, "fallback_used": False}) is None
    two = {
        **FALLBACK,
        "attempts": [
            {"model": "openai/gpt-4o", "outcome": "timeout"},
            {"model": "openai/gpt-4o-mini", "outcome": "error", "status_code": 503},
            {"model": "anthropic/claude-3-5-haiku-20241022", "outcome": "ok"},
        ],
    }
    assert view.fallback_notice(two) == (
        "gpt-4o failed: timed out; gpt-4o-mini failed: unavailable (503); "
        "answered by claude-3-5-haiku-20241022."
    )


def test_attempt_lines() -> None:
    lines = view.attempt_lines(
        [
            {
                "model": "openai/gpt-4o",
                "outcome": "error",
                "status_code": 429,
                "latency_ms": 30,
                "error": "Rate limit reached",
            },
            {"model": "anthropic/claude-3-5-haiku-20241022", "outcome": "ok", "latency_ms": 1700},
        ]
    )
    assert lines == [
        "1. openai/gpt-4o: rate limited, 30 ms (Rate limit reached)",
        "2. anthropic/claude-3-5-haiku-20241022: answered, 1,700 ms",
    ]


def test_error_advice_is_one_actionable_message_per_kind() -> None:
    assert view.error_advice(BudgetExceeded("Ask an admin.")).startswith("Budget refused.")
    rate = view.error_advice(RateLimited("Too many requests.", retry_after_s=17))
    assert rate.startswith("Rate limited.") and "wait 17 s" in rate
    assert view.error_advice(NoKey("No API key for openai.")).startswith("No API key.")
    assert "Rephrase" in view.error_advice(ContentRefused("refused"))
    assert "Try again" in view.error_advice(UpstreamTimeout("slow"))
    assert "pick another model" in view.error_advice(AllModelsFailed("all failed"))


def test_estimate_caption_and_confirmation() -> None:
    est = CostEstimate(prompt_tokens=1240, low_micros=150, high_micros=98_000)
    assert view.estimate_caption(est, 4_990_000, tokens_so_far=1234) == (
        "Next message: about $0.00015–$0.10 (1,234 prompt tokens so far) · "
        "$4.99 left in your budget"
    )
    unknown = CostEstimate(10, None, None, ("custom/llama",))
    assert view.estimate_caption(unknown, None, tokens_so_far=4) == (
        "Next message: cost unknown (4 prompt tokens so far) · unpriced: llama · no hard budget"
    )
    # Nothing typed and nothing sent yet: no "tokens so far" at all.
    assert view.estimate_caption(est, None) == (
        "Next message: about $0.00015–$0.10 · no hard budget"
    )
    assert view.needs_confirmation(est, 50_000)
    assert not view.needs_confirmation(est, 98_000)
    assert not view.needs_confirmation(unknown, 0)


def test_picked_notice_says_when_another_model_answered() -> None:
    same = {"model": "openai/gpt-4o", "picked_model": "openai/gpt-4o", "attempts": []}
    assert view.picked_notice(same) is None
    ranked = {
        "model": "anthropic/claude-3-haiku-20240307",
        "picked_model": "openai/gpt-4o",
        "reordered": True,
        "fallback_used": False,
        "attempts": [],
    }
    assert view.picked_notice(ranked) == (
        "Answered by claude-3-haiku-20240307, not gpt-4o as picked: your route for this "
        "task is cost-optimised and ranked it first."
    )
    # A fallback already has its own notice, which says why.
    failed_over = ranked | {
        "reordered": False,
        "fallback_used": True,
        "attempts": [{"model": "openai/gpt-4o", "outcome": "error", "status_code": 429}],
    }
    assert view.picked_notice(failed_over) is None
    assert view.fallback_notice(failed_over) == (
        "gpt-4o failed: rate limited; answered by claude-3-haiku-20240307."
    )
