"""What every command gets: streams, a clock, and a database opened on first use."""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Callable, Sequence
from typing import TextIO

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from core.config import load_settings
from core.errors import InvalidInput
from core.store import db

Handler = Callable[[argparse.Namespace, "CliContext"], int]


class CliContext:
    """What a command needs, built lazily so `switchboard models` never opens a database."""

    def __init__(self, stdin: TextIO, stdout: TextIO, clock: Clock) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.clock = clock
        self._engine: Engine | None = None

    def engine(self) -> Engine:
        if self._engine is None:
            settings = load_settings()
            self._engine = db.make_engine(settings.database_url, **settings.engine_options())
            db.upgrade_database(self._engine)
        return self._engine

    def sessions(self) -> sessionmaker[Session]:
        return db.make_session_factory(self.engine())

    def out(self, text: str = "") -> None:
        print(text, file=self.stdout)

    def read_secret(self, prompt: str) -> str:
        """A secret from stdin: prompted twice on a terminal, else the first line of a pipe."""
        if self.stdin.isatty():
            first = getpass.getpass(prompt)
            if getpass.getpass("Repeat: ") != first:
                raise InvalidInput("The two entries differ. Nothing was changed; try again.")
            return first
        line = self.stdin.readline()
        return line.rstrip("\r\n")

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def print_table(ctx: CliContext, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        ctx.out("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
