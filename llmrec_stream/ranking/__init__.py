"""Ranking: the model the worker serves, behind one Protocol."""
