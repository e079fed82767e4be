"""``python -m llmrec_stream.config --markdown``: print ``docs/settings.md``."""

from __future__ import annotations

import argparse
import sys

from llmrec_stream.config.docs import SETTINGS_DOC, settings_markdown

parser = argparse.ArgumentParser(prog="python -m llmrec_stream.config")
parser.add_argument("--markdown", action="store_true", help=f"print {SETTINGS_DOC}")
parser.parse_args()
sys.stdout.write(settings_markdown())
