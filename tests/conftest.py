"""Shared fixtures: the exported encoder (once per session) for every tier that needs it.

Every test under a tier's folder carries the tier's marker (``pytest -m 'not integration'``
skips that tier), whatever its module declares.
"""

from pathlib import Path

import pytest

pytest_plugins = ["tests.encoder_fixtures"]

_HERE = Path(__file__).parent
TIERS = {_HERE / "integration": pytest.mark.integration, _HERE / "fault": pytest.mark.fault}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for folder, marker in TIERS.items():
            if folder in item.path.parents:
                item.add_marker(marker)
