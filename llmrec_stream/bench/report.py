"""The benchmarks' result writer: `llmrec_stream.results` (shared with ``eval/``), under the
names the benchmark modules import."""

from __future__ import annotations

from llmrec_stream.results import DEFAULT_RESULTS_DIR, environment, format_table, write_results

__all__ = ["DEFAULT_RESULTS_DIR", "environment", "format_table", "write_results"]
