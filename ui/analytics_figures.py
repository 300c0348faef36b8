"""The analytics key figures: twelve metrics with their change against the period before."""

from __future__ import annotations

import streamlit as st

from core.analytics.figures import KeyFigures, change
from core.money.display import usd


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def _rel(now_value: float | None, before: float | None) -> str | None:
    moved = change(now_value, before)
    return None if moved is None else f"{moved * 100:+.1f}%"


def _pts(now_value: float | None, before: float | None) -> str | None:
    if now_value is None or before is None:
        return None
    return f"{(now_value - before) * 100:+.1f} pts"


def key_figures(cur: KeyFigures, prev: KeyFigures) -> None:
    """Draw the metrics in three rows, with a caption on how to read them."""
    # The value stays short (a metric cuts long text); unpriced requests get their own note.
    cost = usd(cur.cost_micros)
    rows: list[list[tuple[str, str, str | None, str]]] = [
        [
            ("Total cost", cost, _rel(cur.cost_micros, prev.cost_micros), "inverse"),
            ("Requests", f"{cur.requests:,}", _rel(cur.requests, prev.requests), "off"),
            (
                "Tokens in",
                f"{cur.prompt_tokens:,}",
                _rel(cur.prompt_tokens, prev.prompt_tokens),
                "off",
            ),
            (
                "Tokens out",
                f"{cur.completion_tokens:,}",
                _rel(cur.completion_tokens, prev.completion_tokens),
                "off",
            ),
        ],
        [
            (
                "Success rate",
                _pct(cur.success_rate),
                _pts(cur.success_rate, prev.success_rate),
                "normal",
            ),
            (
                "Fallback rate",
                _pct(cur.fallback_rate),
                _pts(cur.fallback_rate, prev.fallback_rate),
                "inverse",
            ),
            ("Error rate", _pct(cur.error_rate), _pts(cur.error_rate, prev.error_rate), "inverse"),
            # In the row's free fourth column: the requests "Total cost" cannot include.
            *(
                [("Unpriced requests", f"{cur.unpriced_requests:,}", None, "off")]
                if cur.unpriced_requests
                else []
            ),
        ],
        [
            (
                "Latency P50",
                _ms(cur.latency_p50_ms),
                _rel(cur.latency_p50_ms, prev.latency_p50_ms),
                "inverse",
            ),
            (
                "Latency P95",
                _ms(cur.latency_p95_ms),
                _rel(cur.latency_p95_ms, prev.latency_p95_ms),
                "inverse",
            ),
            (
                "First token P50",
                _ms(cur.ttft_p50_ms),
                _rel(cur.ttft_p50_ms, prev.ttft_p50_ms),
                "inverse",
            ),
            (
                "First token P95",
                _ms(cur.ttft_p95_ms),
                _rel(cur.ttft_p95_ms, prev.ttft_p95_ms),
                "inverse",
            ),
        ],
    ]
    for row in rows:
        cols = st.columns(4)
        for col, (label, value, delta, color) in zip(cols, row, strict=False):
            col.metric(label, value, delta, delta_color=color)  # type: ignore[arg-type]
    notes = [
        "Changes compare with the previous period of equal length.",
        "Percentiles come from latency histograms (within one bucket, ≤ a third of the value).",
    ]
    if cur.unpriced_requests:
        notes.append(
            f"{cur.unpriced_requests:,} requests used unpriced models; their cost "
            "is unknown and not in the total."
        )
    if cur.estimated_micros:
        notes.append(
            f"{usd(cur.estimated_micros)} of the total is estimated: the worst case held by "
            "interrupted requests, until the ledger journal brings their real figures."
        )
    st.caption(" ".join(notes))
