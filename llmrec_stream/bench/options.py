"""Click options more than one ``bench`` command takes, declared once."""

from __future__ import annotations

from pathlib import Path

import click

from llmrec_stream.bench.report import DEFAULT_RESULTS_DIR

out_option = click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), default=DEFAULT_RESULTS_DIR,
    show_default=True, help="Results folder (JSON, PNG).",
)
encoder_dir_option = click.option(
    "--encoder-dir", type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None, help="Exported encoder artifact (default: the cache dir).",
)
#: The worker's encoder precision (int8 is what it deploys).
precision_option = click.option(
    "--precision", type=click.Choice(["fp32", "int8"]), default="int8", show_default=True,
)
