"""Multi-row INSERTs for the ledger's hot path, without per-row driver round trips.

Why not ``session.execute(insert(t), rows)`` (executemany): sqlite3 releases the GIL
around every row's step, and each time the writer thread wants it back the event
loop thread is made to hand it over, so a 30-row batch costs the loop 30 switches.
One multi-row statement is one step. Why not ``insert(t).values(rows)``: SQLAlchemy
compiles that afresh for every batch, a bind parameter object per value, which
costs more CPU than the rows are worth. Here the SQL is a joined string and the
values go through each column's own bind processor, exactly as SQLAlchemy would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table

# Below SQLite's 32,766 bound parameters per statement and PostgreSQL's 65,535.
MAX_PARAMS = 30_000

_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) in as few statements as the limits allow."""
    if not rows:
        return
    dialect = conn.dialect
    mark = _PLACEHOLDERS[dialect.paramstyle]  # every driver db.make_engine accepts has one
    names = list(rows[0])
    processors: list[tuple[int, Callable[[Any], Any]]] = []
    for i, name in enumerate(names):
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((i, process))
    quote = dialect.identifier_preparer.quote
    head = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
        f"({', '.join(quote(n) for n in names)}) VALUES "
    )
    one_row = "(" + ", ".join([mark] * len(names)) + ")"
    per_statement = max(1, MAX_PARAMS // len(names))
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        params: list[Any] = []
        for row in chunk:
            values = [row[name] for name in names]
            for i, bind in processors:
                values[i] = bind(values[i])
            params.extend(values)
        conn.exec_driver_sql(head + ", ".join([one_row] * len(chunk)), tuple(params))
