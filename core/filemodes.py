"""Private local files: the data folder 0700, the SQLite database and its -wal/-shm 0600.

They hold password hashes, encrypted provider keys and chat text. New ones are created
private whatever the umask; existing ones are never changed behind an admin's back,
but a wider mode is reported at start-up with the command that fixes it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("switchboard.files")

FOLDER_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_folder(folder: Path) -> None:
    """Create ``folder`` 0700 (parents as usual); an existing one is left as it is."""
    if folder.is_dir():
        return
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    os.chmod(folder, FOLDER_MODE)  # mkdir's mode passes through the umask


def private_file(path: Path) -> None:
    """Create an empty ``path`` 0600 if missing, so SQLite opens (not creates) it.

    SQLite gives its -wal and -shm files the database file's mode, so they are 0600 too.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.fchmod(fd, FILE_MODE)  # the umask cannot have widened it, but may have narrowed it
    os.close(fd)


def too_open(path: Path) -> str | None:
    """A warning if ``path`` exists and group or others may read, write or enter it."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if not mode & 0o077:
        return None
    want = FOLDER_MODE if path.is_dir() else FILE_MODE
    return (
        f"{path} is readable by other users (mode {mode:04o}); it holds password hashes, "
        f"encrypted keys and chat text. Fix it with: chmod {want:o} {path}"
    )


def warn_if_open(database: Path) -> list[str]:
    """Log (and return) a warning for the data folder, database and side files if wider."""
    paths = [database.parent, database, *(Path(f"{database}{s}") for s in SQLITE_SIDE_FILES)]
    warnings = [w for w in map(too_open, paths) if w]
    for warning in warnings:
        log.warning(warning)
    return warnings
