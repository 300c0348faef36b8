"""The `switchboard` CLI: one module per command area, registered by core/cli.py."""
