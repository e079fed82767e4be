"""``python -m llmrec_stream``: the CLI."""

from llmrec_stream.cli import main

main()
