"""The layout is the architecture: wings import only the wings below them, core stays
free of Streamlit, pages stay thin, and docs/ARCHITECTURE.md names every module.

These read the source with ``ast`` (imports inside functions count too), so a wrong
import fails here before it becomes a cycle or a page that drags in the gateway.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CORE = REPO_ROOT / "core"

# The request flow runs upwards: a wing may import the wings below it, besides the
# shared modules at core's top level. chat and analytics are page read/write sides;
# commands (the CLI) may use any wing.
FLOW = ("store", "money", "accounts", "upstream", "settings", "compare", "gateway", "api")


def below(wing: str) -> frozenset[str]:
    return frozenset(FLOW[: FLOW.index(wing)])


ALLOWED: dict[str, frozenset[str]] = {
    **{wing: below(wing) for wing in FLOW},
    "chat": below("api"),
    "analytics": below("upstream"),
    "commands": frozenset({*FLOW, "chat", "analytics"}),
}
# Entry points at the top that belong to a wing: `switchboard` is the CLI's.
ENTRY_POINTS = {"cli": "commands", "__main__": "commands"}
MAX_TOP_LEVEL_MODULES = 12
MAX_PAGE_LINES = 200


def wings() -> list[str]:
    return sorted(p.name for p in CORE.iterdir() if (p / "__init__.py").is_file())


def top_level_modules() -> list[str]:
    return sorted(p.stem for p in CORE.glob("*.py"))


def core_sources() -> Iterator[Path]:
    for path in sorted(CORE.rglob("*.py")):
        if "migrations" not in path.relative_to(CORE).parts:
            yield path


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """Every module a file imports, absolute, with its line (functions' imports too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                # `from core.money import budgets` imports core.money.budgets.
                candidate = f"{node.module}.{alias.name}"
                if (REPO_ROOT / candidate.replace(".", "/")).with_suffix(".py").exists() or (
                    REPO_ROOT / candidate.replace(".", "/") / "__init__.py"
                ).exists():
                    yield node.lineno, candidate
                else:
                    yield node.lineno, node.module


def wing_of(module: str) -> str | None:
    """The wing a core module lives in; None for a shared top-level module."""
    parts = module.split(".")
    if parts[0] != "core" or len(parts) < 2:
        return None
    if (CORE / parts[1] / "__init__.py").is_file():
        return parts[1]
    return ENTRY_POINTS.get(parts[1])


def test_every_wing_has_a_rule() -> None:
    assert set(wings()) == set(ALLOWED), (
        "a wing was added or removed: give it a line in ALLOWED and in docs/ARCHITECTURE.md"
    )


def test_core_top_level_stays_small() -> None:
    modules = top_level_modules()
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, (
        f"core/ has {len(modules)} top-level modules ({', '.join(modules)}): "
        "give new code a home in a wing"
    )


@pytest.mark.parametrize("wing", sorted(ALLOWED))
def test_every_wing_says_what_it_owns_in_one_line(wing: str) -> None:
    init = CORE / wing / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text()))
    assert doc and "\n" not in doc.strip(), f"core/{wing}/__init__.py needs a one-line docstring"


def test_wings_import_only_the_wings_below_them() -> None:
    wrong = []
    for path in core_sources():
        here = wing_of(module_name(path))
        for line, target in imported_modules(path):
            there = wing_of(target)
            if there is None or there == here:
                continue
            if here is None:
                wrong.append(f"{path.relative_to(REPO_ROOT)}:{line} (shared) imports {target}")
            elif there not in ALLOWED[here]:
                wrong.append(f"{path.relative_to(REPO_ROOT)}:{line} ({here}) imports {target}")
    assert not wrong, "imports against the flow:\n" + "\n".join(wrong)


def test_the_rule_catches_an_import_against_the_flow(tmp_path: Path) -> None:
    # The checker itself must see imports in function bodies and `from core.x import y`.
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f():\n    from core.gateway import gateway\n    from core.api.app import build_app\n"
    )
    found = {wing_of(target) for _, target in imported_modules(sample)}
    assert found == {"gateway", "api"}
    assert "gateway" not in ALLOWED["store"] and "api" not in ALLOWED["money"]


def test_core_never_imports_streamlit() -> None:
    static = [
        f"{path.relative_to(REPO_ROOT)}:{line}"
        for path in core_sources()
        for line, target in imported_modules(path)
        if target.split(".")[0] == "streamlit"
    ]
    assert not static, f"core imports streamlit at {static}"
    # And nothing core imports drags it in: import every module, then look.
    code = (
        "import importlib, pkgutil, sys, core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'core.'):\n"
        "    if '.migrations' in m.name or m.name.endswith('__main__'):\n"
        "        continue\n"
        "    importlib.import_module(m.name)\n"
        "assert 'streamlit' not in sys.modules, 'streamlit was imported'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("page", sorted(p.name for p in (REPO_ROOT / "app_pages").glob("*.py")))
def test_pages_stay_thin(page: str) -> None:
    lines = len((REPO_ROOT / "app_pages" / page).read_text().splitlines())
    assert lines <= MAX_PAGE_LINES, (
        f"app_pages/{page} has {lines} lines: move its drawing helpers into ui/"
    )


def test_architecture_map_names_every_module_and_only_real_ones() -> None:
    doc = (REPO_ROOT / "docs" / "ARCHITECTURE.md").read_text()
    named = set(re.findall(r"`((?:core|ui)/[\w/]+\.py)`", doc))
    ui_modules = (REPO_ROOT / "ui").glob("*.py")
    real = {
        str(path.relative_to(REPO_ROOT))
        for path in [*core_sources(), *ui_modules]
        if path.name != "__init__.py"
    }
    missing = sorted(real - named)
    gone = sorted(p for p in named if not (REPO_ROOT / p).is_file())
    assert not missing, f"docs/ARCHITECTURE.md does not name {missing}"
    assert not gone, f"docs/ARCHITECTURE.md names modules that do not exist: {gone}"
    for wing in wings():
        assert f"`core/{wing}/`" in doc, f"docs/ARCHITECTURE.md has no section for core/{wing}/"
