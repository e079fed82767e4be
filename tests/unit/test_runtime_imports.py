"""The runtime entry points import no tooling: the production image has none of it.

The worker, create-topics, recs, erase, stack and settings commands run from the runtime
install (``.[cpu]``), which has no torch, scipy or the evaluation and benchmark code's other
extras. Importing the runtime's modules and listing the commands must therefore import nothing
from eval, bench, trainer or demo, nor the heavy libraries behind them. This is the cheap,
every-run check; tests/integration/test_runtime_install.py builds the runtime install itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click

from llmrec_stream.cli import TOOLING, main, missing_distributions

ROOT = Path(__file__).resolve().parents[2]

#: What the runtime commands import, at module level or when they run.
RUNTIME_MODULES = (
    "llmrec_stream.cli",
    "llmrec_stream.worker",
    "llmrec_stream.pipeline",
    "llmrec_stream.encoder.runtime",
    "llmrec_stream.devstack",
    "llmrec_stream.replay",
    "llmrec_stream.security",
    "llmrec_stream.profiles.recs",
    "streams.app",
    "streams.agents",
)
TOOLING_PACKAGES = (
    "llmrec_stream.eval",
    "llmrec_stream.bench",
    "llmrec_stream.trainer",
    "llmrec_stream.demo",
    "llmrec_stream.datasets",
    "torch",
    "scipy",
    "implicit",
    "transformers",
    "sentence_transformers",
    "matplotlib",
    "onnx",
)

_PROBE = """
import json, sys
for name in sys.argv[1].split(","):
    __import__(name)
from llmrec_stream.cli import main
for args in (["--help"], ["worker", "--help"], ["create-topics", "--help"], ["recs", "--help"]):
    try:
        main(args, standalone_mode=False)
    except SystemExit:
        pass
print(json.dumps(sorted(sys.modules)))
"""


def test_runtime_modules_and_the_command_list_import_no_tooling() -> None:
    # a fresh interpreter: this test session has imported tooling modules already
    env = {**os.environ, "LLMREC_KAFKA_BOOTSTRAP": "127.0.0.1:1"}  # streams.app needs one
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(RUNTIME_MODULES)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    loaded = json.loads(out.splitlines()[-1])
    assert set(RUNTIME_MODULES) <= set(loaded)
    tooling = [m for m in loaded if any(m == p or m.startswith(p + ".") for p in TOOLING_PACKAGES)]
    assert tooling == []


def test_the_help_lists_every_tooling_command_without_loading_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "llmrec_stream", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    listed = {line.split()[0] for line in result.split("Commands:")[1].splitlines() if line}
    assert set(TOOLING) <= listed
    assert {"worker", "create-topics", "recs", "erase", "stack", "settings"} <= listed


def test_each_tooling_entry_loads_the_command_it_describes() -> None:
    """With the extras installed (this venv) each entry loads, and its --help line is the
    command's own, so the two cannot drift apart."""
    ctx = click.Context(main)
    for name, entry in TOOLING.items():
        assert missing_distributions(entry.extras) == []
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name
        assert command.get_short_help_str(1000) == entry.help

