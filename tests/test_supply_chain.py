"""The lock files pin everything with hashes, and never a malicious litellm.

requirements.lock is what running needs (`make run`); requirements-dev.lock adds the test
and dev tools (`make test`). The runtime lock must be a strict subset of the dev lock,
pin for pin, so tests run exactly what users run.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MALICIOUS_LITELLM = {"1.82.7", "1.82.8"}


DEV_TOOLS = ("pytest", "playwright", "mypy", "ruff")


def _pins(lock: str = "requirements.lock") -> dict[str, tuple[str, list[str]]]:
    text = (ROOT / lock).read_text()
    pins: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = re.match(r"([A-Za-z0-9_.\-\[\]]+)==([^\s\\;]+)", block)
        if head:
            pins[head.group(1).lower()] = (head.group(2), re.findall(r"--hash=sha256:\w+", block))
    return pins


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-dev.lock"])
def test_every_pin_has_hashes(lock: str) -> None:
    pins = _pins(lock)
    assert len(pins) > 50
    assert [name for name, (_, hashes) in pins.items() if not hashes] == []


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-dev.lock"])
def test_litellm_is_pinned_and_not_malicious(lock: str) -> None:
    version, _ = _pins(lock)["litellm"]
    assert version not in MALICIOUS_LITELLM
    assert importlib.metadata.version("litellm") == version


def test_runtime_lock_is_the_dev_lock_without_the_dev_tools() -> None:
    runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    assert {name: runtime[name] for name in runtime} == {name: dev[name] for name in runtime}
    assert [tool for tool in DEV_TOOLS if tool in runtime] == []
    assert [tool for tool in DEV_TOOLS if tool not in dev] == []


def test_pyproject_excludes_the_malicious_releases():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    [litellm] = [d for d in deps if d.startswith("litellm")]
    assert "!=1.82.7" in litellm and "!=1.82.8" in litellm


def test_makefile_installs_with_require_hashes():
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes" in makefile and "LITELLM_LOCAL_MODEL_COST_MAP" in makefile
