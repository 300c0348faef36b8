"""Local secret files generated once into the data folder with 0600 permissions."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from core.errors import ConfigError
from core.filemodes import private_folder


def read_or_create_key_file(path: Path, nbytes: int = 32) -> tuple[str, bool]:
    """Return (key, created). The key is URL-safe text; created is True on first use."""
    try:
        if path.is_file():
            key = path.read_text(encoding="utf-8").strip()
            if key:
                return key, False
        private_folder(path.parent)
        key = secrets.token_urlsafe(nbytes)
        # O_EXCL so two processes starting together cannot both write a different key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip(), False
    except PermissionError:
        raise ConfigError(
            f"Cannot write {path}: the data folder is read-only. "
            "Make it writable, or set SWITCHBOARD_DATA_DIR to a writable folder."
        ) from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    return key, True
