"""Full-ranking metrics with one target per user: Recall@K and NDCG@K.

Conventions, applied identically to every model the harness runs:

* **Full ranking**: the target competes with every item in the catalog, no sampled negatives.
* **History exclusion**: items in the user's input history are removed from the ranking,
  except the target itself, which always stays rankable (a repeat purchase can be a hit).
* **Ties are pessimistic**: the target's 0-based rank is the number of other candidates whose
  score is greater than *or equal to* its own. A model that scores everything alike ranks the
  target last, never first, so degenerate scorers cannot look good.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from llmrec_stream.eval.data import IntArray, SeqDataset

FloatArray = npt.NDArray[np.floating]
#: ``scorer(user_rows, histories) -> scores`` with shape ``(len(histories), n_items + 1)``.
Scorer = Callable[[IntArray, Sequence[IntArray]], npt.NDArray[np.floating]]
DEFAULT_KS: tuple[int, ...] = (10, 20)


def mask_history(scores: FloatArray, histories: Sequence[IntArray]) -> npt.NDArray[np.float64]:
    """A float64 copy with the padding column and each row's history items at -inf."""
    masked = scores.astype(np.float64, copy=True)
    masked[:, 0] = -np.inf
    for row, history in enumerate(histories):
        masked[row, history] = -np.inf
    return masked


def target_ranks(
    scores: FloatArray, targets: IntArray, histories: Sequence[IntArray]
) -> npt.NDArray[np.int64]:
    """0-based pessimistic rank of each row's target among non-history items (column 0 = pad)."""
    if scores.ndim != 2 or scores.shape[0] != len(targets) or len(histories) != len(targets):
        raise ValueError(f"shape mismatch: scores {scores.shape}, {len(targets)} targets")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    rows = np.arange(len(targets))
    own = scores.astype(np.float64)[rows, targets]
    masked = mask_history(scores, histories)
    masked[rows, targets] = -np.inf  # the target does not count against itself
    return (masked >= own[:, None]).sum(axis=1).astype(np.int64)


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


def summarize(ranks: npt.NDArray[np.int64], ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = recall_at(ranks, k)
        out[f"ndcg@{k}"] = ndcg_at(ranks, k)
    return out


def evaluate(
    scorer: Scorer,
    data: SeqDataset,
    split: str,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int = 1024,
    histories: Sequence[IntArray] | None = None,
    users: IntArray | None = None,
) -> dict[str, float]:
    """Score ``split``'s targets; ``histories`` replaces the inputs (and what is excluded).

    ``users`` restricts the evaluation to those user rows.
    """
    inputs = list(histories) if histories is not None else data.inputs(split)
    targets = data.targets(split)
    chosen = np.arange(len(targets)) if users is None else np.asarray(users, dtype=np.int64)
    ranks = []
    for start in range(0, len(chosen), batch_size):
        rows = chosen[start : start + batch_size]
        batch = [inputs[r] for r in rows]
        scores = scorer(rows, batch)
        if scores.shape != (len(rows), data.n_items + 1):
            raise ValueError(f"scorer returned {scores.shape}, want ({len(rows)}, n_items + 1)")
        ranks.append(target_ranks(scores, targets[rows], batch))
    return summarize(np.concatenate(ranks) if ranks else np.zeros(0, np.int64), ks)
