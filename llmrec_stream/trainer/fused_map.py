"""The design's original loss: a map ``f`` from the fused profile ``u`` to the next item's vector.

``u`` is exactly what the worker keeps in Redis for a user who buys items and writes nothing:
the fusion module's behaviour vector (purchase weight times decayed item text vectors),
normalised by ``fuse``. ``f`` is a residual MLP trained to minimise ``||f(u) - v||^2`` with
``v`` the next item's text vector; items are then ranked by ``<f(u), v_i>``, so serving needs
no other item matrix than the text vectors the worker already indexes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from tqdm import tqdm  # type: ignore[import-untyped]

from llmrec_stream.datasets.metrics import Scorer
from llmrec_stream.datasets.sequences import IntArray, SeqDataset
from llmrec_stream.profiles.fusion import FusionWeights, decay
from llmrec_stream.sources.atomic import DEFAULT_GAP_MS
from llmrec_stream.trainer.loop import (
    FitConfig,
    FitResult,
    run_epochs,
    seed_everything,
)

Matrix = npt.NDArray[np.float32]


def prefix_profiles(seq: IntArray, vectors: Matrix, weights: FusionWeights) -> Matrix:
    """Fused profile after each prefix of ``seq`` (purchases one replay gap apart), (len, dim)."""
    gamma = decay(DEFAULT_GAP_MS, weights.half_life_s)
    out = np.empty((len(seq), vectors.shape[1]), dtype=np.float64)
    acc = np.zeros(vectors.shape[1], dtype=np.float64)
    for t, item in enumerate(seq):
        acc = gamma * acc + weights.purchase * vectors[item]
        out[t] = acc
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def profiles(histories: Sequence[IntArray], vectors: Matrix, weights: FusionWeights) -> Matrix:
    """The fused profile of each whole history (zeros for an empty one)."""
    out = np.zeros((len(histories), vectors.shape[1]), dtype=np.float32)
    for row, seq in enumerate(histories):
        if len(seq):
            out[row] = prefix_profiles(seq, vectors, weights)[-1]
    return out


class FusedMap(nn.Module):
    """``f(u) = u + W2 GELU(W1 LN(u))``: starts near identity (ranking by the profile itself)."""

    def __init__(self, dim: int, hidden: int = 512, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, dim),
        )

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return u + self.net(u)


@dataclass
class FusedMapModel:
    net: FusedMap
    vectors: Matrix
    weights: FusionWeights

    def scorer(self, split: str = "") -> Scorer:
        def score(users: IntArray, histories: Sequence[IntArray]) -> npt.NDArray[np.float32]:
            self.net.eval()
            with torch.no_grad():
                u = torch.from_numpy(profiles(histories, self.vectors, self.weights))
                query = self.net(u).numpy()
            return query @ self.vectors.T

        return score


def fit_fused_map(
    data: SeqDataset, vectors: Matrix, cfg: FitConfig, hidden: int = 512, dropout: float = 0.1,
    weights: FusionWeights | None = None,
) -> tuple[FusedMapModel, FitResult]:
    """MSE training on every (prefix profile, next item vector) pair of ``data.train``.

    Early stopping and ``fixed_epochs`` as in `loop.fit_sequential`.
    """
    if data.refit and cfg.fixed_epochs is None:
        raise ValueError("a refit view has no validation split: give fixed_epochs")
    seed_everything(cfg.seed, cfg.threads)
    weights = weights or FusionWeights()
    us, vs = [], []
    for seq in data.train:
        if len(seq) >= 2:
            us.append(prefix_profiles(seq[:-1], vectors, weights))
            vs.append(vectors[seq[1:]])
    u_all, v_all = torch.from_numpy(np.concatenate(us)), torch.from_numpy(np.concatenate(vs))
    model = FusedMapModel(FusedMap(vectors.shape[1], hidden, dropout), vectors, weights)
    opt = torch.optim.Adam(model.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)

    def train_epoch(epoch: int) -> list[float]:
        model.net.train()
        order = torch.randperm(len(u_all), generator=gen)
        losses = []
        for i in tqdm(range(0, len(order), cfg.batch_size), disable=not cfg.progress,
                      desc=f"fused-map epoch {epoch}", leave=False):
            idx = order[i : i + cfg.batch_size]
            loss = ((model.net(u_all[idx]) - v_all[idx]) ** 2).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        return losses

    result = run_epochs(model.net, data, cfg, train_epoch, model.scorer, "fused-map",
                        announce=False)
    return model, result
