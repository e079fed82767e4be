"""The import graph's contracts ([tool.importlinter] in pyproject.toml), checked every run.

Arrows point one way: the library never imports the Faust wiring (``streams/``), the runtime
imports no tooling, the trainer and evaluation share ``datasets/`` instead of importing each
other, and the tooling packages form layers with no cycles. import-linter reads the source
(grimp), so a function-level import counts as much as a module-level one; names given to
``importlib`` as strings (the CLI's lazy tooling table, the spec providers) are not arrows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter", reason="import-linter comes with the `test` extra")

ROOT = Path(__file__).resolve().parents[2]
_RUN = ("from importlinter.cli import lint_imports; "
        "raise SystemExit(lint_imports(no_cache=True, no_logo=True))")


def test_the_import_contracts_hold() -> None:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run([sys.executable, "-c", _RUN], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_the_cycle_contract_covers_the_whole_package() -> None:
    """A cycle anywhere breaks the run, not only inside the packages someone listed: the
    acyclic contract starts at the roots (and import-linter walks down from there)."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"][
        "importlinter"]["contracts"]
    roots = {a for c in contracts if c["type"] == "acyclic_siblings" for a in c["ancestors"]}
    assert {"llmrec_stream", "streams"} <= roots
    assert all(c.get("depth", 10) >= 10 for c in contracts if c["type"] == "acyclic_siblings")
