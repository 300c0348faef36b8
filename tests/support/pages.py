"""AppTest helpers: a signed-in session, and fake providers wired into the app's database.

The app builds its own gateway from the environment (one per data folder), so the
fakes are reached the way an admin would set them up: base-URL overrides for the
built-in providers, and provider keys in the environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from streamlit.testing.v1 import AppTest

from core.clock import utc_now
from core.money.catalog import load_catalog
from core.settings import endpoints, routes
from tests.fakes import FakeAnthropic, FakeOpenAI

APP = str(Path(__file__).resolve().parents[2] / "app.py")
OPENAI_KEY = "sk-test-openai-key-0001"
ANTHROPIC_KEY = "sk-ant-test-key-0002"


def signed_in(username: str, page: str | None = None, *, timeout: float = 30) -> AppTest:
    """An AppTest for the whole app with ``username`` signed in, optionally on ``page``."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.run()
    if page is not None:
        at.switch_page(page).run()
    return at


@dataclass
class AppFakes:
    openai: FakeOpenAI
    anthropic: FakeAnthropic


@pytest.fixture
def app_fakes(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> Iterator[AppFakes]:
    """Fake OpenAI and Anthropic behind the app's gateway, with environment keys set."""
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    builtins = load_catalog().providers()
    with FakeOpenAI() as openai, FakeAnthropic() as anthropic:
        with sessions.begin() as s:
            for name, fake in (("openai", openai), ("anthropic", anthropic)):
                endpoints.add_endpoint(
                    s,
                    name=name,
                    kind="override",
                    api_base=fake.base_url,
                    models=(),
                    actor="test",
                    now=utc_now(),
                    builtin_providers=builtins,
                )
        yield AppFakes(openai, anthropic)


def org_route(sessions: sessionmaker[Session], models: list[str], task: str = "") -> None:
    with sessions.begin() as s:
        routes.set_route(
            s,
            scope="org",
            scope_id=0,
            models=models,
            known_model=lambda m: True,
            actor="test",
            now=utc_now(),
            task=task,
        )


def texts(at: AppTest) -> str:
    """Everything the page wrote as markdown, captions, alerts and titles, joined."""
    parts: list[Any] = [
        *at.title,
        *at.header,
        *at.subheader,
        *at.markdown,
        *at.caption,
        *at.info,
        *at.success,
        *at.warning,
        *at.error,
    ]
    return "\n".join(str(p.value) for p in parts)


def notices(at: AppTest) -> list[str]:
    """Success boxes and toasts: what a save said, wherever the page chose to say it."""
    return [str(e.value) for e in (*at.success, *at.toast)]
