"""The Analytics page in a real browser over demo data; screenshots of its charts.

Demo data and an admin are written through the real CLI before `streamlit run app.py`
starts on a throwaway SQLite file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ROOT
from tests.browser.test_signin_browser import PASSWORD, open_page, settled, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


def _demo_data(rows: int, days: int) -> None:
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    done = subprocess.run(
        [sys.executable, "-m", "core", "demo-data", "--rows", str(rows), "--days", str(days)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _charts_drawn(page: Page, at_least: int) -> None:
    charts = page.get_by_test_id("stPlotlyChart")
    expect(charts.nth(at_least - 1)).to_be_visible()
    # Plotly draws its SVG after the element appears; wait for the bars and slices.
    expect(charts.first.locator(".main-svg").first).to_be_visible()
    settled(page)
    page.wait_for_timeout(800)


def test_analytics_page_with_demo_data(
    page: Page,
    start_app: Callable[[], str],
    cli_add_user: Callable[..., None],
    artifacts: Path,
) -> None:
    _demo_data(20_000, 30)
    cli_add_user("boss", PASSWORD, role="admin", name="Boss Admin")
    base = start_app()
    sign_in(page, base, "boss", PASSWORD)

    open_page(page, "Analytics", "analytics")
    expect(page.get_by_role("heading", name="Analytics", exact=True).first).to_be_visible()
    expect(page.get_by_test_id("stMetric").first).to_be_visible()
    expect(page.get_by_text("Showing usage for everyone").first).to_be_visible()
    _charts_drawn(page, 5)
    page.screenshot(path=str(artifacts / "analytics-overview.png"), full_page=True)
    charts = page.get_by_test_id("stPlotlyChart")
    for i, name in enumerate(
        (
            "cost-over-time",
            "tokens-by-provider",
            "cost-by-task",
            "fallback-error-rates",
            "cost-by-user",
        )
    ):
        charts.nth(i).scroll_into_view_if_needed()
        charts.nth(i).screenshot(path=str(artifacts / f"analytics-chart-{name}.png"))

    # A filter goes into the URL and narrows every figure.
    provider = page.get_by_test_id("stSelectbox").filter(has_text="Provider")
    provider.scroll_into_view_if_needed()
    provider.locator("input").click()
    page.get_by_role("option", name="openai", exact=True).click()
    expect(page).to_have_url(re.compile(r"provider=openai"))
    settled(page)
    _charts_drawn(page, 3)
    page.screenshot(path=str(artifacts / "analytics-openai.png"), full_page=True)

    page.get_by_text("Models", exact=True).last.click()
    expect(page.get_by_text("Model performance").first).to_be_visible()
    _charts_drawn(page, 1)
    page.screenshot(path=str(artifacts / "analytics-models.png"), full_page=True)
    page.get_by_test_id("stPlotlyChart").first.screenshot(
        path=str(artifacts / "analytics-chart-latency.png")
    )

    page.get_by_text("Budgets & alerts", exact=True).click()
    expect(page.get_by_text("Burn-down for").first).to_be_visible()
    _charts_drawn(page, 1)
    page.screenshot(path=str(artifacts / "analytics-budgets.png"), full_page=True)
    page.get_by_test_id("stPlotlyChart").first.screenshot(
        path=str(artifacts / "analytics-chart-burn-down.png")
    )
    expect(page).to_have_url(re.compile(r"view=Budgets"))
