"""Money for people (core/money/display.py) and charts that read right (ui/chart_style.py,
ui/analytics_charts.py): separators, sub-cent digits, no "μ", no broken axes on one day."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pandas as pd

from core.analytics.budgets_forecast import forecast
from core.money.budgets import BudgetInfo, alert_message
from core.money.display import percent_text, price_per_1m, usd, usd_or_unpriced
from ui import analytics_charts as charts
from ui import chart_style as style


def test_usd_rounds_to_cents_and_keeps_two_digits_below_a_cent() -> None:
    assert usd(7_910_000) == "$7.91"
    assert usd(7_914_999) == "$7.91" and usd(7_915_000) == "$7.92"  # half up
    assert usd(1_234_567_890_000) == "$1,234,567.89"
    assert usd(7_300) == "$0.0073" and usd(7_312) == "$0.0073"
    assert usd(1) == "$0.000001" and usd(10) == "$0.00001"
    assert usd(0) == "$0.00" and usd(-41_555_000) == "-$41.56"
    assert usd_or_unpriced(None) == "unpriced" and usd_or_unpriced(5, priced=False) == "unpriced"


def test_prices_per_million_keep_their_digits() -> None:
    assert price_per_1m(Decimal("0.075")) == "$0.075"
    assert price_per_1m(Decimal("2.5")) == "$2.50"
    assert price_per_1m(Decimal("1500")) == "$1,500.00"
    assert price_per_1m(None) == "?"


def test_percent_never_rounds_up_to_a_threshold_not_reached() -> None:
    assert percent_text(0.995) == "99%"  # not "100%" while under the limit
    assert percent_text(1.0) == "100%" and percent_text(0.8) == "80%"
    assert percent_text(float("inf")) == "over 100%"


def _budget(spent: int, limit: int = 100_000_000, hard: bool = True) -> BudgetInfo:
    return BudgetInfo(
        1, "team", "1", "team Ops", limit, spent, 0, "2026-12", hard, datetime(2027, 1, 1).date()
    )


def test_a_budget_at_99_percent_says_99_not_reached_80() -> None:
    now = datetime(2026, 12, 20, tzinfo=UTC)
    budget = _budget(99_000_000)
    fc = forecast(budget, now)
    assert fc.reached == 80
    message = alert_message(budget, fc.reached)
    assert message == (
        "The hard monthly budget of team Ops is at 99% ($99.00 of $100.00 in 2026-12): "
        "past the 80% warning."
    )
    assert "reached 80%" not in message
    over = _budget(100_000_000)
    assert "is at 100%" in alert_message(over, 100) and "refused" in alert_message(over, 100)


def test_provider_colours_are_stable_and_models_share_their_providers_hue() -> None:
    assert style.provider_colour("openai") == style.PROVIDER_COLOURS["openai"]
    assert style.provider_colour("fireworks_ai") == style.provider_colour("fireworks_ai")
    assert style.provider_colour("fireworks_ai") in style.PALETTE
    colours = style.series_colours(["openai/gpt-4o", "openai/gpt-4o-mini", "anthropic/claude"])
    assert colours["openai/gpt-4o"] == style.PROVIDER_COLOURS["openai"]  # the first shade
    assert colours["openai/gpt-4o-mini"] != colours["openai/gpt-4o"]
    assert colours["anthropic/claude"] == style.PROVIDER_COLOURS["anthropic"]


def _one_day(cost: float) -> pd.DataFrame:
    day = pd.Timestamp("2026-12-05")
    return pd.DataFrame(
        [(day, "openai", cost, 3), (day, "anthropic", cost / 2, 1)],
        columns=["period", "series", "cost_usd", "requests"],
    )


def test_one_day_of_tiny_costs_gets_a_day_wide_axis_and_plain_dollars() -> None:
    fig = charts.cost_over_time(_one_day(0.0073), "provider", "day")
    assert fig is not None
    x, y = fig.layout.xaxis, fig.layout.yaxis
    start, end = (pd.Timestamp(v) for v in x.range)
    assert end - start >= pd.Timedelta(hours=24)  # not "23:59:59.999 … 00:00:00.0005"
    assert x.tickformat == "%d %b"
    # Fixed decimals, never SI prefixes ("10μ"); from zero, never below $0.
    assert y.tickprefix == "$" and y.tickformat == ",.3f" and y.rangemode == "tozero"
    colours = {t.name: t.marker.color for t in fig.data}
    assert colours == {"openai": "#10a37f", "anthropic": "#d97757"}


def test_large_costs_get_separators_and_whole_dollars() -> None:
    fig = charts.cost_over_time(_one_day(12_500.0), "provider", "day")
    assert fig is not None and fig.layout.yaxis.tickformat == ",.0f"


def test_no_data_is_an_empty_state_not_an_axis_from_minus_one() -> None:
    empty = pd.DataFrame(columns=["period", "series", "cost_usd", "requests"])
    assert charts.cost_over_time(empty, "provider", "day") is None
    assert charts.cost_over_time(_one_day(0.0), "provider", "day") is None
    rates = pd.DataFrame(
        [(pd.Timestamp("2026-12-05"), 4, 0.0, 0.0)],
        columns=["day", "requests", "fallback_rate", "error_rate"],
    )
    spikes = pd.DataFrame(columns=["day", "provider", "error_rate"])
    fig = charts.rates_over_time(rates, spikes)
    assert fig is not None and list(fig.layout.yaxis.range) == [0, 5.0]  # not -1% to 1%
    assert charts.rates_over_time(rates.iloc[0:0], spikes) is None
    tokens = pd.DataFrame(columns=["provider", "prompt_tokens", "completion_tokens", "tokens"])
    assert charts.tokens_by_provider(tokens) is None


def test_one_day_bars_are_a_day_wide_not_a_hairline() -> None:
    fig = charts.cost_over_time(_one_day(0.5), "provider", "day")
    assert fig is not None
    assert {t.width for t in fig.data} == {86_400_000 * 0.8}
