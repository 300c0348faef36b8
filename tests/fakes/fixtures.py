"""Pytest fixtures for the fakes (function-scoped; each starts in a few ms).

To use them, import them into a conftest.py::

    from tests.fakes.fixtures import fake_anthropic, fake_ollama, fake_openai  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.ollama import FakeOllama
from tests.fakes.openai import FakeOpenAI


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake
    assert not fake.errors, f"the fake itself failed: {fake.errors!r}"


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake
    assert not fake.errors, f"the fake itself failed: {fake.errors!r}"


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    with FakeOllama() as fake:
        yield fake
    assert not fake.errors, f"the fake itself failed: {fake.errors!r}"
