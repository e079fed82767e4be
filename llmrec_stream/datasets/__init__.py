"""Offline data shared by evaluation and training: the sequence data set, its loaders, the
full-ranking metrics, the model-spec contract and the registry models announce themselves in.

Both ``eval/`` (the harness, the peers) and ``trainer/`` (the torch models) build on this
package; neither imports the other at import time. The trainer registers its specs here
(`specs.register`), and the harness reads them by name.
"""

from __future__ import annotations

from llmrec_stream.datasets.sequences import IntArray, SeqDataset, load_dataset
from llmrec_stream.datasets.specs import EvalContext, ModelSpec, Skip

__all__ = ["EvalContext", "IntArray", "ModelSpec", "SeqDataset", "Skip", "load_dataset"]
