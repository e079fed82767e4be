"""Tiny, real model artifacts for tests (needs torch: import it after `importorskip`)."""

from __future__ import annotations

from pathlib import Path

import torch

from llmrec_stream.trainer.export import write_artifact
from llmrec_stream.trainer.hybrid import HybridSeq

ITEMS = [f"i{k}" for k in range(12)]
TEXT_DIM = 8


def toy_artifact(
    path: Path, version: str = "toy-1", ndcg: float = 0.5, encoder: str = ""
) -> Path:
    torch.manual_seed(0)
    text = torch.nn.functional.normalize(torch.randn(len(ITEMS) + 1, TEXT_DIM), dim=1)
    text[0] = 0
    net = HybridSeq(len(ITEMS), text, dim=8, heads=2, max_len=8).eval()
    with torch.no_grad():
        items = net.item_matrix().numpy().copy()
    items[0] = 0
    return write_artifact(path, net, item_ids=ITEMS, items=items, item_text=text.numpy(),
                          version=version, metrics={"valid": {"ndcg@10": ndcg}}, params={},
                          encoder=encoder)
