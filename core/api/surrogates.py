"""Refusing lone UTF-16 surrogates in a request body.

JSON may spell half a surrogate pair (``"a\\ud800b"``) and Python decodes it into a
string no database driver can encode, so it would fail the ledger row later. A body
is checked once, after parsing: only when its raw text holds a surrogate escape at
all (a fast scan), then each string of the parsed value.
"""

from __future__ import annotations

import re
from typing import Any

from core.errors import InvalidInput

# \uD800-\uDFFF written as a JSON escape, in either case.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE = re.compile("[\ud800-\udfff]")


def _where(value: Any, path: str) -> str | None:
    """The JSON path of the first string (or key) holding a lone surrogate."""
    if isinstance(value, str):
        return path if _LONE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if _LONE.search(key):
                return f"{path}.<key>"
            found = _where(item, f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _where(item, f"{path}[{i}]")
            if found:
                return found
    return None


def refuse_lone_surrogates(text: str, body: Any) -> None:
    """InvalidInput (400) naming the field, if any string in ``body`` has a lone surrogate.

    Paired surrogates (an emoji written as two escapes) decode to one character and pass.
    """
    if "\\u" not in text or not _SURROGATE_ESCAPE.search(text):
        return
    where = _where(body, "body")
    if where is not None:
        raise InvalidInput(
            f"`{where.removeprefix('body.')}` contains a lone UTF-16 surrogate "
            "(half of a \\uD800-\\uDFFF pair), which is not text. Send valid Unicode."
        )
