"""The ``llmrec-stream`` command line.

The runtime commands (worker, create-topics, recs, erase, stack, settings; `commands`)
import only what the runtime install (``.[cpu]``) has. The tooling commands (bench, demo, eval,
train) live with their rooms and need extras the production image leaves out (torch, scipy,
the embedded servers): they are registered by name and imported only when invoked, so
``--help`` lists them without loading them and the runtime install alone starts. This is
click's documented "lazily loading subcommands" pattern (`lazy`).
"""

from __future__ import annotations

from llmrec_stream.cli.commands import main
from llmrec_stream.cli.lazy import TOOLING, LazyGroup, Tooling, missing_distributions

__all__ = ["TOOLING", "LazyGroup", "Tooling", "main", "missing_distributions"]
