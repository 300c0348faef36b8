"""Plotly figures for the analytics page, built from the small DataFrames core returns."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import plotly.graph_objects as go

from core.analytics.budgets_forecast import Forecast, month_bounds
from core.request import MICROS_PER_USD
from ui import chart_style as style

_LAYOUT = {
    "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
    "height": 340,
    "legend": {"orientation": "h", "y": -0.2},
}


def _figure(title: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, **_LAYOUT)
    return fig


def cost_over_time(frame: pd.DataFrame, by: str, grain: str) -> go.Figure | None:
    """Stacked cost per period; None when nothing in the period cost money."""
    if frame.empty or not style.has_data(frame["cost_usd"]):
        return None
    fig = _figure(f"Cost per {grain}, by {by}")
    top = frame.groupby("series")["cost_usd"].sum().sort_values(ascending=False)
    colours = style.series_colours(str(s) for s in top.index)
    for series in top.index:
        part = frame[frame["series"] == series]
        fig.add_bar(
            x=part["period"],
            y=part["cost_usd"],
            name=str(series),
            marker_color=colours[str(series)],
        )
    fig.update_layout(barmode="stack")
    # On a date axis Plotly sizes bars from the gap between periods; one period has none.
    fig.update_traces(width=style.period_ms(grain) * 0.8)
    style.money_axis(fig, list(frame.groupby("period")["cost_usd"].sum()))
    style.time_axis(fig, list(frame["period"]), grain)
    return fig


def tokens_by_provider(frame: pd.DataFrame) -> go.Figure | None:
    if frame.empty or not style.has_data(frame["tokens"]):
        return None
    fig = _figure("Tokens by provider")
    names = [str(p) for p in frame["provider"]]
    fig.add_pie(
        labels=names,
        values=frame["tokens"],
        hole=0.5,
        sort=True,
        marker={"colors": [style.provider_colour(p) for p in names]},
        hovertemplate="%{label}: %{value:,} tokens (%{percent})<extra></extra>",
    )
    return fig


def cost_bar(frame: pd.DataFrame, title: str) -> go.Figure | None:
    """Horizontal bars of cost per name (top 20); None when nothing cost money."""
    if frame.empty or not style.has_data(frame["cost_usd"]):
        return None
    fig = _figure(title)
    top = frame.head(20).iloc[::-1]
    fig.add_bar(x=top["cost_usd"], y=top["name"], orientation="h", name="cost")
    style.money_axis(fig, list(top["cost_usd"]), axis="x")
    fig.update_layout(showlegend=False, yaxis_type="category")
    return fig


def latency_distribution(frame: pd.DataFrame, top_models: int = 6) -> go.Figure | None:
    if frame.empty:
        return None
    fig = _figure("Latency of successful requests, per model (share per bucket)")
    totals = frame.groupby("model")["count"].sum().sort_values(ascending=False)
    colours = style.series_colours(str(m) for m in totals.index[:top_models])
    shares: list[float] = []
    for model in totals.index[:top_models]:
        part = frame[frame["model"] == model]
        share = part["count"] / totals[model] * 100
        shares += list(share)
        labels = [
            f"{lo / 1000:g}-{hi / 1000:g}s" if hi > lo else f">={lo / 1000:g}s"
            for lo, hi in zip(part["low_ms"], part["high_ms"], strict=True)
        ]
        fig.add_scatter(
            x=labels,
            y=share,
            mode="lines+markers",
            name=str(model),
            line={"color": colours[str(model)]},
        )
    fig.update_layout(xaxis_title="latency bucket", xaxis_type="category")
    style.percent_axis(fig, shares)
    return fig


def rates_over_time(frame: pd.DataFrame, spikes: pd.DataFrame) -> go.Figure | None:
    if frame.empty:
        return None
    fig = _figure("Fallback and error rate per day")
    mode = "lines+markers" if len(frame) < 3 else "lines"  # one day is a point, not a line
    fig.add_scatter(x=frame["day"], y=frame["fallback_rate"] * 100, name="fallback rate", mode=mode)
    fig.add_scatter(x=frame["day"], y=frame["error_rate"] * 100, name="error rate", mode=mode)
    values = [*(frame["fallback_rate"] * 100), *(frame["error_rate"] * 100)]
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
        values += list(spikes["error_rate"] * 100)
    style.percent_axis(fig, values)
    style.time_axis(fig, list(frame["day"]), "day")
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
    style.money_axis(fig, [b.limit_micros / usd, fc.projected_micros / usd, b.spent_micros / usd])
    fig.update_layout(height=280, showlegend=True)
    fig.update_xaxes(
        type="date",
        range=[start.date(), (end - pd.Timedelta(days=1)).date()],
        tickformat="%d %b",
    )
    return fig
