"""Read side of the usage ledger: scope, filters, figures, charts data, budgets, alerts.

Queries aggregate in SQL, mostly over the daily rollups (core/rollups.py), and return
small pandas DataFrames; pages draw them. Nothing here loads the whole ledger.
"""
