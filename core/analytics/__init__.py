"""Read side of the ledger in SQL over daily rollups: filters, figures, alerts, exports."""
