"""How every chart reads: one colour per provider, money and percent axes, time axes that
suit a day of data as well as a quarter, and an empty state instead of a broken plot.

Plotly's defaults go wrong on small data: a single day zooms the time axis into
milliseconds ("23:59:59.999"), an all-zero series draws -1 to 1, and tiny dollar amounts
get SI prefixes ("10μ"). Each helper here fixes one axis kind for every chart.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import Final, Literal

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

# First-class providers get a fixed, recognisable colour; others one from the palette,
# chosen by a hash of the name so it is the same in every chart, run and process.
PROVIDER_COLOURS: Final = {
    "openai": "#10a37f",
    "anthropic": "#d97757",
    "gemini": "#4285f4",
    "mistral": "#fa520f",
    "deepseek": "#4d6bfe",
    "xai": "#555555",
    "groq": "#f55036",
    "cohere": "#39594d",
    "perplexity": "#20808d",
    "openrouter": "#6467f2",
    "together_ai": "#0f6fff",
    "ollama": "#8c6d46",
}
PALETTE: Final = (
    "#636efa",
    "#ab63fa",
    "#19d3f3",
    "#ff6692",
    "#b6e880",
    "#ff97ff",
    "#fecb52",
    "#00cc96",
    "#ef553b",
    "#8c564b",
)
NONE_COLOUR: Final = "#b0b0b0"  # "(none)": requests refused before any provider


def provider_colour(provider: str) -> str:
    if provider in PROVIDER_COLOURS:
        return PROVIDER_COLOURS[provider]
    if not provider or provider.startswith("("):
        return NONE_COLOUR
    digest = hashlib.sha256(provider.encode()).digest()
    return PALETTE[digest[0] % len(PALETTE)]


def _mix(colour: str, white: float) -> str:
    """``colour`` lightened towards white by ``white`` (0..1)."""
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    mixed = [round(c + (255 - c) * white) for c in rgb]
    return "#" + "".join(f"{c:02x}" for c in mixed)


def series_colours(names: Iterable[str]) -> dict[str, str]:
    """A colour per series: a provider's own; a model its provider's, one shade per model."""
    colours: dict[str, str] = {}
    shade: dict[str, int] = {}
    for name in sorted(set(names)):
        provider, slash, _ = name.partition("/")
        if not slash:
            colours[name] = provider_colour(name)
            continue
        step = shade.get(provider, 0)
        shade[provider] = step + 1
        colours[name] = _mix(provider_colour(provider), min(0.6, 0.2 * step))
    return colours


def money_axis(fig: go.Figure, values: Sequence[float], axis: Literal["x", "y"] = "y") -> None:
    """Dollars with thousands separators, cents where they matter, never "μ" or below $0."""
    top = max((abs(v) for v in values), default=0.0)
    if top >= 100:
        digits = 0
    elif top >= 0.05 or top == 0:
        digits = 2
    else:  # under five cents: enough decimals for two significant digits
        digits = min(6, 1 - math.floor(math.log10(top)))
    layout = {
        "tickprefix": "$",
        "tickformat": f",.{digits}f",
        "hoverformat": f",.{max(digits, 2)}f",
        "rangemode": "tozero",
    }
    fig.update_layout({f"{axis}axis": layout})


def percent_axis(fig: go.Figure, values: Sequence[float]) -> None:
    """0% upwards (never -1% to 1%), with room above the highest value."""
    top = max((v for v in values if not math.isnan(v)), default=0.0)
    fig.update_layout(
        yaxis={"ticksuffix": "%", "range": [0, max(5.0, top * 1.15)], "tickformat": ",.0f"}
    )


def period_ms(grain: str) -> float:
    """One period of the time axis in milliseconds, Plotly's unit for date widths."""
    return (3_600 if grain == "hour" else 86_400) * 1000.0


def time_axis(fig: go.Figure, periods: Sequence[pd.Timestamp], grain: str) -> None:
    """Days or hours on the x axis; a single period gets a whole day (or hour) around it."""
    unit = pd.Timedelta(hours=1) if grain == "hour" else pd.Timedelta(days=1)
    layout: dict[str, object] = {
        "type": "date",
        "tickformat": "%d %b %H:%M" if grain == "hour" else "%d %b",
        "hoverformat": "%d %b %Y %H:%M" if grain == "hour" else "%d %b %Y",
    }
    if periods:
        first, last = min(periods), max(periods)
        layout["range"] = [first - unit * 0.6, last + unit * 0.6]
        if last - first <= unit * 7:
            layout["dtick"] = unit.total_seconds() * 1000 * (1 if grain == "day" else 3)
    fig.update_layout(xaxis=layout)


def has_data(values: Iterable[float]) -> bool:
    return any(v for v in values if not (isinstance(v, float) and math.isnan(v)))


def draw(
    where: DeltaGenerator, fig: go.Figure | None, *, key: str, empty: str, title: str = ""
) -> None:
    """The chart, or a plain sentence saying there is nothing to chart yet."""
    if fig is None:
        with where.container(border=True):
            if title:
                st.markdown(f"**{title}**")
            st.caption(empty)
        return
    where.plotly_chart(fig, key=key)
