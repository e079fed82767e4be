"""Metric maths against hand-computed values: ranks, ties, history exclusion, NDCG/Recall."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from llmrec_stream.datasets.metrics import evaluate, ndcg_at, recall_at, summarize, target_ranks
from llmrec_stream.datasets.sequences import IntArray
from llmrec_stream.datasets.toys import tiny_dataset


def _ranks(scores: list[list[float]], targets: list[int], hist: list[list[int]],
           mask: str = "all") -> list[int]:
    arr = np.array(scores, dtype=np.float32)
    out = target_ranks(arr, np.array(targets), [np.array(h, dtype=np.int64) for h in hist], mask)
    return out.tolist()


def test_rank_counts_strictly_better_items() -> None:
    # column 0 is padding and never counts, even with the top score
    assert _ranks([[9.0, 0.1, 0.5, 0.3, 0.2]], [3], [[]]) == [1]
    assert _ranks([[9.0, 0.1, 0.5, 0.3, 0.2]], [2], [[]]) == [0]


def test_ties_are_pessimistic() -> None:
    assert _ranks([[0.0, 1.0, 1.0, 1.0, 1.0]], [2], [[]]) == [3]
    assert _ranks([[0.0, 0.5, 0.7, 0.7, 0.1]], [3], [[]]) == [1]


def test_all_history_is_excluded_a_repeated_target_included() -> None:
    # items 2 and 4 beat the target 3 but were already seen
    assert _ranks([[0.0, 0.1, 0.9, 0.3, 0.8]], [3], [[2, 4]]) == [0]
    # a target that repeats the history is out of the ranking like the rest: a miss, even
    # with the top score (the served lists never contain history)
    assert _ranks([[0.0, 0.1, 0.9, 0.3, 0.8]], [2], [[2, 4]]) == [4]


def test_unmasked_rule_ranks_against_the_whole_catalog() -> None:
    # RecBole-style: seen items 2 and 4 still compete, and a repeated target can be a hit
    assert _ranks([[0.0, 0.1, 0.9, 0.3, 0.8]], [3], [[2, 4]], "none") == [2]
    assert _ranks([[0.0, 0.1, 0.9, 0.3, 0.8]], [2], [[2, 4]], "none") == [0]
    with pytest.raises(ValueError, match="mask"):
        _ranks([[0.0, 1.0]], [1], [[]], "target")


def test_nan_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        _ranks([[0.0, math.nan, 1.0]], [1], [[]])


def test_ndcg_and_recall_by_hand() -> None:
    ranks = np.array([0, 1, 9, 10, 25])
    assert recall_at(ranks, 10) == pytest.approx(3 / 5)
    assert recall_at(ranks, 20) == pytest.approx(4 / 5)
    expected10 = (1.0 + 1 / math.log2(3) + 1 / math.log2(11)) / 5
    assert ndcg_at(ranks, 10) == pytest.approx(expected10)
    expected20 = expected10 + 1 / math.log2(12) / 5
    assert ndcg_at(ranks, 20) == pytest.approx(expected20)
    assert set(summarize(ranks)) == {"recall@10", "ndcg@10", "recall@20", "ndcg@20"}


def test_evaluate_uses_split_inputs_and_histories() -> None:
    data = tiny_dataset()

    def oracle(users: IntArray, histories: Sequence[IntArray]) -> npt.NDArray[np.float32]:
        scores = np.zeros((len(users), data.n_items + 1), dtype=np.float32)
        scores[np.arange(len(users)), data.test_target[users]] = 1.0
        return scores

    assert evaluate(oracle, data, "test")["ndcg@10"] == pytest.approx(1.0)
    # the same scores rank the valid target last among ties: a miss at K=10 here
    assert evaluate(oracle, data, "valid", ks=(1,))["recall@1"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="split"):
        evaluate(oracle, data, "train")
