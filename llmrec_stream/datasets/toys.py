"""Tiny synthetic data sets with a known answer, for tests and quick checks of the harness."""

from __future__ import annotations

import numpy as np

from llmrec_stream.datasets.sequences import SeqDataset, from_sequences


def tiny_dataset() -> SeqDataset:
    seqs = {"u1": ["a", "b", "c", "d"], "u2": ["b", "c", "a"], "u3": ["d", "a", "b", "c", "e"]}
    return from_sequences("tiny", seqs, item_text={i: f"item {i}" for i in "abcde"})


def cyclic_dataset(n_items: int = 30, n_users: int = 600, length: int = 8,
                   seed: int = 0) -> SeqDataset:
    """Users walk the catalog in order from a random start: the next item is predictable."""
    rng = np.random.default_rng(seed)
    seqs = {}
    for u in range(n_users):
        start = int(rng.integers(n_items))
        seqs[f"u{u}"] = [f"i{(start + k) % n_items}" for k in range(length)]
    order = [f"i{k}" for k in range(n_items)]
    return from_sequences("cyclic", seqs, item_text={i: f"product {i}" for i in order},
                          item_order=order)
