"""Persistence: engine, tables, migrations, the ledger and its writer, rollups, audit log."""
