"""Candidate retrieval: item indexes behind one Protocol, and the shared item catalog."""
