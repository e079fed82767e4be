"""The offline evaluation harness: data loaders, full-ranking metrics, peers, reports.

`run_eval` and `eval_cmd` are the entry points; the harness core needs no torch (the torch
models register from ``llmrec_stream.trainer.specs``).
"""

from __future__ import annotations

from llmrec_stream.eval.data import SeqDataset, load_dataset
from llmrec_stream.eval.harness import EvalContext, ModelResult, ModelSpec, run_eval

__all__ = ["EvalContext", "ModelResult", "ModelSpec", "SeqDataset", "load_dataset", "run_eval"]
