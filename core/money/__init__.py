"""Money: the model catalog, exact pricing, budgets and their holds, rate limits, spend."""
