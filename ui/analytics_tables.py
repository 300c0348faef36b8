"""The analytics tables as people read them: named columns, dollars with separators.

Core returns frames with column names made for code (``unpriced_requests``,
``cost_micros``); every table on the page goes through here, so no raw name or
micro-dollar column reaches the screen. Exports keep the exact figures (core/analytics/exports.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import streamlit as st

from core.money.display import usd

# Core's column names -> the words on screen, for every analytics table.
LABELS: Mapping[str, str] = {
    "name": "Name",
    "provider": "Provider",
    "model": "Model",
    "task": "Task",
    "requests": "Requests",
    "tokens": "Tokens",
    "unpriced_requests": "Unpriced requests",
    "at": "Time (UTC)",
    "id": "Request",
    "username": "User",
    "requested_model": "Requested",
    "served_model": "Served",
    "prompt_tokens": "Tokens in",
    "completion_tokens": "Tokens out",
    "latency_ms": "Latency (ms)",
    "ttft_ms": "First token (ms)",
    "status": "Status",
    "outcome": "Outcome",
    "seq": "#",
    "key_source": "Key",
    "error": "Error",
    "cost": "Cost",
}


def money_column(label: str, values: Iterable[float], help: str | None = None) -> Any:
    """A sortable dollar column: cents with separators, or more digits if some are sub-cent."""
    smallest = min((abs(v) for v in values if v and not math.isnan(v)), default=1.0)
    digits = 2 if smallest >= 0.01 else min(6, 1 - math.floor(math.log10(smallest)))
    return st.column_config.NumberColumn(label, format=f"$%,.{digits}f", help=help)


def _label(column: str) -> str:
    return LABELS.get(column, column.replace("_", " ").capitalize())


def cost_table(frame: pd.DataFrame, name_label: str) -> None:
    """Cost per user, team or task: name, requests, tokens, cost, unpriced requests."""
    shown = frame.drop(columns=["cost_micros"]).rename(columns={"cost_usd": "cost"})
    config: dict[str, Any] = {c: _label(c) for c in shown.columns}
    config["name"] = name_label
    config["cost"] = money_column(
        "Cost", shown["cost"], help="Priced requests only; unpriced ones are counted apart."
    )
    config["requests"] = st.column_config.NumberColumn("Requests", format="%,d")
    config["tokens"] = st.column_config.NumberColumn("Tokens", format="%,d")
    config["unpriced_requests"] = st.column_config.NumberColumn(
        "Unpriced requests", format="%,d", help="Cost unknown: a model without a price."
    )
    st.dataframe(shown, hide_index=True, width="stretch", column_config=config)


def performance_table(perf: pd.DataFrame) -> None:
    config: dict[str, Any] = {c: _label(c) for c in perf.columns}
    config.update(
        {
            "requests": st.column_config.NumberColumn("Requests", format="%,d"),
            "success_rate": st.column_config.NumberColumn("Success", format="percent"),
            "avg_latency_ms": st.column_config.NumberColumn("Avg latency (ms)", format="%,.0f"),
            "p95_latency_ms": st.column_config.NumberColumn("P95 latency (ms)", format="%,.0f"),
            "avg_ttft_ms": st.column_config.NumberColumn("Avg first token (ms)", format="%,.0f"),
            # A rate, not an amount: per-1K prices keep their sub-cent digits.
            "cost_per_1k_usd": st.column_config.NumberColumn("$ / 1K tokens", format="$%.5f"),
            "rating": st.column_config.NumberColumn("Avg rating", format="%.2f"),
            "sample_size": st.column_config.NumberColumn(
                "Sample size", format="%,d", help="Successful requests the latency figures rest on"
            ),
        }
    )
    st.dataframe(perf, hide_index=True, width="stretch", column_config=config)


def requests_table(rows: pd.DataFrame) -> None:
    """One page of recent requests; an unpriced cost says so, never $0, and an interrupted
    request's cost says it is an estimate."""
    shown = rows.assign(
        cost=[
            "unpriced" if pd.isna(c) else f"~{usd(int(c))} (estimated)" if e else usd(int(c))
            for c, e in zip(rows["cost_micros"], rows["estimated"], strict=True)
        ]
    ).drop(columns=["cost_micros", "estimated"])
    config: dict[str, Any] = {c: _label(c) for c in shown.columns}
    config["at"] = st.column_config.DatetimeColumn("Time (UTC)", format="YYYY-MM-DD HH:mm:ss")
    st.dataframe(shown, hide_index=True, width="stretch", column_config=config)


def attempts_table(tries: list[dict[str, Any]]) -> None:
    frame = pd.DataFrame(tries).drop(columns=["id", "request_id"], errors="ignore")
    if "cost_micros" in frame.columns:
        frame["cost_micros"] = [
            usd(int(c)) if pd.notna(c) else "unpriced" for c in frame["cost_micros"]
        ]
        frame = frame.rename(columns={"cost_micros": "cost"})
    config: dict[str, Any] = {c: _label(c) for c in frame.columns}
    st.dataframe(frame, hide_index=True, width="stretch", column_config=config)
