"""Full-ranking metrics with one target per user: Recall@K and NDCG@K.

Conventions, applied identically to every model the harness runs:

* **Full ranking**: the target competes with every item in the catalog, no sampled negatives.
* **History exclusion** (``mask="all"``, the one rule for every model): every item of the
  user's input history is removed from the ranking, the target included when it repeats a
  history item (then it is a miss): the served lists never contain history, so a repeat can
  never be a hit live either. ``mask="none"`` ranks against the whole catalog with no
  exclusion, the number RecBole-based papers report for sequential models; it is reported
  beside, labelled, never used for selection.
* **Ties are pessimistic**: the target's 0-based rank is the number of other candidates whose
  score is greater than *or equal to* its own. A model that scores everything alike ranks the
  target last, never first, so degenerate scorers cannot look good.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from llmrec_stream.datasets.sequences import IntArray, SeqDataset

FloatArray = npt.NDArray[np.floating]
#: ``scorer(user_rows, histories) -> scores`` with shape ``(len(histories), n_items + 1)``.
Scorer = Callable[[IntArray, Sequence[IntArray]], npt.NDArray[np.floating]]
DEFAULT_KS: tuple[int, ...] = (10, 20)
MASKS: tuple[str, ...] = ("all", "none")


def mask_history(scores: FloatArray, histories: Sequence[IntArray]) -> npt.NDArray[np.float64]:
    """A float64 copy with the padding column and each row's history items at -inf."""
    masked = scores.astype(np.float64, copy=True)
    masked[:, 0] = -np.inf
    for row, history in enumerate(histories):
        masked[row, history] = -np.inf
    return masked


def target_ranks(
    scores: FloatArray, targets: IntArray, histories: Sequence[IntArray], mask: str = "all"
) -> npt.NDArray[np.int64]:
    """0-based pessimistic rank of each row's target (column 0, the padding, never ranks).

    ``mask="all"``: history items are out of the ranking; a target that repeats one is a miss
    (rank ``n_items``, past any cut-off). ``mask="none"``: no item is excluded.
    """
    if mask not in MASKS:
        raise ValueError(f"mask must be one of {MASKS}, got {mask!r}")
    if scores.ndim != 2 or scores.shape[0] != len(targets) or len(histories) != len(targets):
        raise ValueError(f"shape mismatch: scores {scores.shape}, {len(targets)} targets")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    rows = np.arange(len(targets))
    own = scores.astype(np.float64)[rows, targets]
    if mask == "all":
        masked = mask_history(scores, histories)
    else:
        masked = scores.astype(np.float64, copy=True)
        masked[:, 0] = -np.inf
    masked[rows, targets] = -np.inf  # the target does not count against itself
    ranks = (masked >= own[:, None]).sum(axis=1).astype(np.int64)
    if mask == "all":
        repeated = np.array([bool(np.isin(t, h)) for t, h in zip(targets, histories, strict=True)],
                            dtype=bool)
        ranks[repeated] = scores.shape[1] - 1
    return ranks


def top_k_lists(
    scores: FloatArray, histories: Sequence[IntArray], k: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The ranked lists the metrics judge: best ``k`` columns per row, history excluded.

    Equal scores keep column order (stable sort), so a list is reproducible.
    """
    masked = mask_history(scores, histories)
    order = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    return order.astype(np.int64), np.take_along_axis(masked, order, axis=1)


def recall_at(ranks: npt.NDArray[np.int64], k: int) -> float:
    return float(np.mean(ranks < k)) if len(ranks) else 0.0


def ndcg_at(ranks: npt.NDArray[np.int64], k: int) -> float:
    """With one relevant item the ideal DCG is 1, so NDCG is ``1 / log2(rank + 2)`` on a hit."""
    if not len(ranks):
        return 0.0
    gains = np.where(ranks < k, 1.0 / np.log2(ranks.astype(np.float64) + 2.0), 0.0)
    return float(np.mean(gains))


def ndcg_per_user(ranks: npt.NDArray[np.int64], k: int = 10) -> npt.NDArray[np.float64]:
    """Each user's NDCG@k (0 on a miss): the unit the paired bootstrap resamples."""
    return np.where(ranks < k, 1.0 / np.log2(ranks.astype(np.float64) + 2.0), 0.0)


def summarize(ranks: npt.NDArray[np.int64], ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = recall_at(ranks, k)
        out[f"ndcg@{k}"] = ndcg_at(ranks, k)
    return out


def evaluate_ranks(
    scorer: Scorer,
    data: SeqDataset,
    split: str,
    *,
    batch_size: int = 1024,
    histories: Sequence[IntArray] | None = None,
    users: IntArray | None = None,
    masks: Sequence[str] = ("all",),
) -> dict[str, npt.NDArray[np.int64]]:
    """Per-user target ranks of ``split`` under each mask rule (one scoring pass for all).

    ``histories`` replaces the inputs (and what is excluded); ``users`` restricts the rows.
    """
    inputs = list(histories) if histories is not None else data.inputs(split)
    targets = data.targets(split)
    chosen = np.arange(len(targets)) if users is None else np.asarray(users, dtype=np.int64)
    ranks: dict[str, list[npt.NDArray[np.int64]]] = {m: [] for m in masks}
    for start in range(0, len(chosen), batch_size):
        rows = chosen[start : start + batch_size]
        batch = [inputs[r] for r in rows]
        scores = scorer(rows, batch)
        if scores.shape != (len(rows), data.n_items + 1):
            raise ValueError(f"scorer returned {scores.shape}, want ({len(rows)}, n_items + 1)")
        for m in masks:
            ranks[m].append(target_ranks(scores, targets[rows], batch, m))
    return {m: np.concatenate(r) if r else np.zeros(0, np.int64) for m, r in ranks.items()}


def evaluate(
    scorer: Scorer,
    data: SeqDataset,
    split: str,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int = 1024,
    histories: Sequence[IntArray] | None = None,
    users: IntArray | None = None,
    mask: str = "all",
) -> dict[str, float]:
    """Score ``split``'s targets; ``histories`` replaces the inputs (and what is excluded).

    ``users`` restricts the evaluation to those user rows.
    """
    ranks = evaluate_ranks(scorer, data, split, batch_size=batch_size, histories=histories,
                           users=users, masks=(mask,))
    return summarize(ranks[mask], ks)
