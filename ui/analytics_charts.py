"""Plotly figures for the analytics page, built from the small DataFrames core returns."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import plotly.graph_objects as go

from core.analytics.budgets_forecast import Forecast, month_bounds
from core.request import MICROS_PER_USD

_LAYOUT = {
    "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
    "height": 340,
    "legend": {"orientation": "h", "y": -0.2},
}


def _figure(title: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, **_LAYOUT)
    return fig


def cost_over_time(frame: pd.DataFrame, by: str, grain: str) -> go.Figure:
    fig = _figure(f"Cost per {grain}, by {by} (USD)")
    top = frame.groupby("series")["cost_usd"].sum().sort_values(ascending=False)
    for series in top.index:
        part = frame[frame["series"] == series]
        fig.add_bar(x=part["period"], y=part["cost_usd"], name=str(series))
    fig.update_layout(barmode="stack", yaxis_tickprefix="$")
    return fig


def tokens_by_provider(frame: pd.DataFrame) -> go.Figure:
    fig = _figure("Tokens by provider")
    fig.add_pie(labels=frame["provider"], values=frame["tokens"], hole=0.5, sort=True)
    return fig


def cost_bar(frame: pd.DataFrame, title: str) -> go.Figure:
    fig = _figure(title)
    top = frame.head(20).iloc[::-1]
    fig.add_bar(x=top["cost_usd"], y=top["name"], orientation="h")
    fig.update_layout(xaxis_tickprefix="$")
    return fig


def latency_distribution(frame: pd.DataFrame, top_models: int = 6) -> go.Figure:
    fig = _figure("Latency of successful requests, per model (share per bucket)")
    totals = frame.groupby("model")["count"].sum().sort_values(ascending=False)
    for model in totals.index[:top_models]:
        part = frame[frame["model"] == model]
        share = part["count"] / totals[model] * 100
        labels = [
            f"{lo / 1000:g}-{hi / 1000:g}s" if hi > lo else f">={lo / 1000:g}s"
            for lo, hi in zip(part["low_ms"], part["high_ms"], strict=True)
        ]
        fig.add_scatter(x=labels, y=share, mode="lines+markers", name=str(model))
    fig.update_layout(yaxis_ticksuffix="%", xaxis_title="latency bucket")
    return fig


def rates_over_time(frame: pd.DataFrame, spikes: pd.DataFrame) -> go.Figure:
    fig = _figure("Fallback and error rate per day")
    fig.add_scatter(
        x=frame["day"], y=frame["fallback_rate"] * 100, name="fallback rate", mode="lines"
    )
    fig.add_scatter(x=frame["day"], y=frame["error_rate"] * 100, name="error rate", mode="lines")
    if not spikes.empty:
        fig.add_scatter(
            x=spikes["day"],
            y=spikes["error_rate"] * 100,
            mode="markers+text",
            name="provider error spike",
            text=spikes["provider"],
            textposition="top center",
            marker={"symbol": "x", "size": 12, "color": "crimson"},
        )
    fig.update_layout(yaxis_ticksuffix="%")
    return fig


def burn_down(fc: Forecast, frame: pd.DataFrame, now: datetime) -> go.Figure:
    b = fc.budget
    fig = _figure(f"{b.label}: spend this month")
    usd = float(MICROS_PER_USD)
    start, end = month_bounds(now)
    if not frame.empty:
        fig.add_scatter(
            x=frame["day"], y=frame["spent_micros"] / usd, name="spent", mode="lines+markers"
        )
        last = frame["day"].iloc[-1]
        fig.add_scatter(
            x=[last, (end - pd.Timedelta(days=1)).date()],
            y=[b.spent_micros / usd, fc.projected_micros / usd],
            name="projected",
            mode="lines",
            line={"dash": "dash"},
        )
    fig.add_hline(
        y=b.limit_micros / usd,
        line_color="crimson",
        annotation_text="limit",
        annotation_position="top left",
    )
    fig.update_layout(
        yaxis_tickprefix="$",
        height=280,
        xaxis_range=[start.date(), (end - pd.Timedelta(days=1)).date()],
    )
    return fig
