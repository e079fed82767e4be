"""Shared fixtures: the exported encoder (once per session) for every tier that needs it."""

pytest_plugins = ["tests.encoder_fixtures"]
