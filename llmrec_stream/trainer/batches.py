"""Sequences to padded tensors: left padding, newest item last, per-batch width.

Left padding keeps the newest item in the last column, so "the query" is always
``states[:, -1]``. Each batch is only as wide as its longest row: rows are bucketed by
length, which saves most of the padding on short-sequence catalogs (Beauty averages 9 items).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
import torch

IntArray = npt.NDArray[np.int64]


def left_pad(seqs: Sequence[IntArray], max_len: int, width: int | None = None) -> IntArray:
    """The last ``max_len`` items of each sequence, right-aligned, 0 on the left."""
    width = width or max(1, min(max_len, max((len(s) for s in seqs), default=1)))
    out = np.zeros((len(seqs), width), dtype=np.int64)
    for row, seq in enumerate(seqs):
        tail = np.asarray(seq[-width:], dtype=np.int64)
        if len(tail):
            out[row, width - len(tail) :] = tail
    return out


def training_pairs(train: Sequence[IntArray], max_len: int) -> list[IntArray]:
    """Every training sequence of at least two items, cut to its last ``max_len + 1`` items.

    Inputs are ``seq[:-1]`` and targets ``seq[1:]``: each position predicts the next item.
    """
    return [np.asarray(s[-(max_len + 1) :], dtype=np.int64) for s in train if len(s) >= 2]


def batches(
    seqs: Sequence[IntArray], batch_size: int, rng: np.random.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled ``(inputs, targets)`` batches (0 = padding in both), bucketed by length."""
    order = rng.permutation(len(seqs))
    chunk = batch_size * 32
    groups: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk].tolist(), key=lambda i: len(seqs[i]))
        groups.extend(part[j : j + batch_size] for j in range(0, len(part), batch_size))
    for g in rng.permutation(len(groups)):
        rows = [seqs[i] for i in groups[g]]
        padded = left_pad(rows, max_len=max(len(r) for r in rows))
        yield torch.from_numpy(padded[:, :-1].copy()), torch.from_numpy(padded[:, 1:].copy())


def n_batches(n_seqs: int, batch_size: int) -> int:
    chunk = batch_size * 32
    full, rest = divmod(n_seqs, chunk)
    return full * 32 + -(-rest // batch_size)
