"""Test infrastructure shared by several test modules (real database servers and the like)."""
