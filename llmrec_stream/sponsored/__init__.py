"""Sponsored slots: campaigns, their atomic budgets, and where sponsored items go in a top-k."""
