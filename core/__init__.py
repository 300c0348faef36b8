"""Switchboard core: routing, budgets, ledger and persistence. Never imports streamlit."""
