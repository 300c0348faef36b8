"""The lock file pins everything with hashes, and never a malicious litellm."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MALICIOUS_LITELLM = {"1.82.7", "1.82.8"}


def _pins() -> dict[str, tuple[str, list[str]]]:
    text = (ROOT / "requirements.lock").read_text()
    pins: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = re.match(r"([A-Za-z0-9_.\-\[\]]+)==([^\s\\;]+)", block)
        if head:
            pins[head.group(1).lower()] = (head.group(2), re.findall(r"--hash=sha256:\w+", block))
    return pins


def test_every_pin_has_hashes():
    pins = _pins()
    assert len(pins) > 50
    assert [name for name, (_, hashes) in pins.items() if not hashes] == []


def test_litellm_is_pinned_and_not_malicious():
    version, _ = _pins()["litellm"]
    assert version not in MALICIOUS_LITELLM
    assert importlib.metadata.version("litellm") == version


def test_pyproject_excludes_the_malicious_releases():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    [litellm] = [d for d in deps if d.startswith("litellm")]
    assert "!=1.82.7" in litellm and "!=1.82.8" in litellm


def test_makefile_installs_with_require_hashes():
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes" in makefile and "LITELLM_LOCAL_MODEL_COST_MAP" in makefile
