"""The offline evaluation harness: peers, protocol, significance, reports, and the live =
offline equivalence check.

`run_eval` and `eval_cmd` are the entry points; the data sets, metrics and the model-spec
contract live in `llmrec_stream.datasets` (shared with the trainer); the harness core needs no
torch (the torch models register from ``llmrec_stream.trainer.specs``).
"""

from __future__ import annotations

from llmrec_stream.datasets.sequences import SeqDataset, load_dataset
from llmrec_stream.datasets.specs import EvalContext, ModelSpec
from llmrec_stream.eval.harness import ModelResult, run_eval

__all__ = ["EvalContext", "ModelResult", "ModelSpec", "SeqDataset", "load_dataset", "run_eval"]
