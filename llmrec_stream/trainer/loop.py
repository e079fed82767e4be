"""One training loop for every sequential model: full-softmax cross-entropy, early stopping.

Every position of every training sequence predicts its next item against the whole catalog
(no sampled negatives). After each epoch the model is scored on the validation targets with
the harness's own metric, and the best epoch's weights are kept; training stops after
``patience`` epochs without improvement, after ``epochs``, or past ``max_minutes`` (0: no
wall-clock cap), and ``FitResult.stopped_by`` says which bound ended it. With ``fixed_epochs``
(the harness's refit on train + valid) it trains exactly that many epochs, evaluates nothing
and keeps the last weights: the refit data set has no validation split to stop on.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from tqdm import tqdm  # type: ignore[import-untyped]

from llmrec_stream.datasets.metrics import Scorer, evaluate
from llmrec_stream.datasets.sequences import IntArray, SeqDataset
from llmrec_stream.trainer.batches import batches, left_pad, n_batches, training_pairs

log = logging.getLogger(__name__)
SELECT_METRIC = "ndcg@10"


class SeqNet(Protocol):
    max_len: int

    def states(self, items: torch.Tensor) -> torch.Tensor: ...

    def item_matrix(self) -> torch.Tensor: ...


@dataclass(frozen=True)
class FitConfig:
    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 10
    max_minutes: float = 0.0
    fixed_epochs: int | None = None
    seed: int = 0
    threads: int = 1
    progress: bool = True
    #: Weight of the dense "all later items" term (0 = plain next-item cross-entropy).
    future_weight: float = 0.0


@dataclass
class FitResult:
    best_epoch: int
    valid: dict[str, float]
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    #: "patience", "epochs", "time" (the wall-clock cap bound) or "fixed" (a refit).
    stopped_by: str = ""


def stop_reason(cfg: FitConfig, epoch: int, stale: int, elapsed_s: float) -> str:
    """Why training stops after ``epoch`` ("" to go on); patience wins a tie with a cap."""
    if stale >= cfg.patience:
        return "patience"
    if epoch >= cfg.epochs:
        return "epochs"
    if cfg.max_minutes > 0 and elapsed_s > cfg.max_minutes * 60:
        return "time"
    return ""


def seed_everything(seed: int, threads: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - libraries that read the global state
    torch.manual_seed(seed)
    torch.set_num_threads(threads)


def seq_scorer(net: nn.Module, max_len: int) -> Scorer:
    """Score the whole catalog from each history's newest state (eval mode, no grad)."""

    def score(users: IntArray, histories: Sequence[IntArray]) -> npt.NDArray[np.float32]:
        net.eval()
        with torch.no_grad():
            items = torch.from_numpy(left_pad(histories, max_len))
            query = net.states(items)[:, -1]  # type: ignore[operator]
            scores = query @ net.item_matrix().T  # type: ignore[operator]
        return scores.numpy()

    return score


def future_loss(logp: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean -log p of the items *after* the next one, per position that has any (dense loss).

    It teaches which items a history leads to over the whole session, not only next.
    """
    length = y.shape[1]
    cols = torch.arange(length, device=y.device)
    later = y[:, None, :].expand(-1, length, -1)  # [b, t, s] = y[b, s]
    mask = (cols[None, :] > cols[:, None])[None] & (later != 0)
    live = x != 0
    targets, mask = later[live], mask[live]
    picked = logp.gather(1, (targets - 1).clamp(min=0)) * mask
    has = mask.any(dim=1)
    if not bool(has.any()):
        return logp.new_zeros(())
    return -(picked.sum(1)[has] / mask.sum(1)[has]).mean()


def train_step(net: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               future_weight: float = 0.0) -> float:
    net.train()
    states = net.states(x)  # type: ignore[operator]
    live = x != 0
    h = states[live]
    logits = h @ net.item_matrix()[1:].T  # type: ignore[operator]
    loss = nn.functional.cross_entropy(logits, y[live] - 1)
    if future_weight > 0:
        logp = torch.log_softmax(logits, dim=1)
        loss = loss + future_weight * future_loss(logp, x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def fit_sequential(net: nn.Module, data: SeqDataset, cfg: FitConfig, name: str = "") -> FitResult:
    """Train ``net`` in place on ``data.train``; on return it holds its best validation weights.

    With ``cfg.fixed_epochs`` it holds the weights after exactly that many epochs instead.
    """
    if data.refit and cfg.fixed_epochs is None:
        raise ValueError("a refit view has no validation split: give fixed_epochs")
    seed_everything(cfg.seed, cfg.threads)
    max_len = int(net.max_len)  # type: ignore[arg-type]
    pairs = training_pairs(data.train, max_len)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)

    def train_epoch(epoch: int) -> list[float]:
        total = n_batches(len(pairs), cfg.batch_size)
        bar = tqdm(batches(pairs, cfg.batch_size, rng), total=total, disable=not cfg.progress,
                   desc=f"{name} epoch {epoch}", leave=False)
        return [train_step(net, opt, x, y, cfg.future_weight) for x, y in bar]

    return run_epochs(net, data, cfg, train_epoch, lambda: seq_scorer(net, max_len), name)


def run_epochs(
    net: nn.Module,
    data: SeqDataset,
    cfg: FitConfig,
    train_epoch: Callable[[int], list[float]],
    scorer: Callable[[], Scorer],
    name: str = "",
    *,
    announce: bool = True,
) -> FitResult:
    """The epochs of a fit, whatever the model: ``train_epoch(epoch)`` (its losses), then,
    unless ``cfg.fixed_epochs``, validation with ``scorer()``, the best weights kept and early
    stopping (`stop_reason`). On return ``net`` holds the best validation weights (or those
    after exactly ``cfg.fixed_epochs``). ``announce`` logs each epoch's row (and writes it
    beside the progress bar)."""
    start = time.monotonic()
    best: dict[str, float] = {}
    best_state, best_epoch, stale, stopped = None, 0, 0, "epochs"
    history: list[dict[str, float]] = []
    epochs = cfg.fixed_epochs if cfg.fixed_epochs is not None else cfg.epochs
    for epoch in range(1, epochs + 1):
        losses = train_epoch(epoch)
        if cfg.fixed_epochs is not None:
            history.append({"epoch": float(epoch), "loss": float(np.mean(losses))})
            stopped, best_epoch = "fixed", epoch
            continue
        valid = evaluate(scorer(), data, "valid")
        row = {"epoch": float(epoch), "loss": float(np.mean(losses)), **valid}
        history.append(row)
        if announce:
            log.info("%s %s", name, row)
        if announce and cfg.progress:
            tqdm.write(f"{name} epoch {epoch}: loss {row['loss']:.4f} "
                       f"valid {SELECT_METRIC} {valid[SELECT_METRIC]:.4f}")
        if not best or valid[SELECT_METRIC] > best[SELECT_METRIC]:
            best, best_epoch, stale = valid, epoch, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            stale += 1
        stopped = stop_reason(cfg, epoch, stale, time.monotonic() - start)
        if stopped:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    return FitResult(best_epoch, best, time.monotonic() - start, history, stopped)
