"""NDCG per encoder configuration: the content recommender and the paired comparison."""

from __future__ import annotations

import numpy as np
import pytest

from llmrec_stream.bench.quality import Arm, compare, profiles, row_cosines, user_ndcg
from llmrec_stream.datasets.sequences import from_sequences


def _data():  # type: ignore[no-untyped-def]
    # items a..f; each user's test item is the item nearest their recent history
    return from_sequences("toy", {"u1": ["a", "b", "c", "d"], "u2": ["e", "f", "a", "b"]},
                          item_order=["a", "b", "c", "d", "e", "f"])


def test_profile_weights_the_newest_item_most() -> None:
    items = np.eye(3, dtype=np.float32)
    (p,) = profiles(items, [np.array([0, 1, 2])], half_life=1.0)
    assert p[2] > p[1] > p[0] > 0  # newest 1, then 0.5, then 0.25
    assert p[1] / p[2] == pytest.approx(0.5) and np.linalg.norm(p) == pytest.approx(1.0)
    assert not profiles(items, [np.zeros(0, np.int64)]).any()


def test_ndcg_is_one_when_the_target_is_the_nearest_unseen_item() -> None:
    data = _data()
    # test input of u1 = a b c, target d; of u2 = e f a, target b
    vec = {"a": [1, 0, 0], "b": [0.9, 0.1, 0], "c": [0, 1, 0], "d": [0, 1, 0.1],
           "e": [0, 0, 1], "f": [0.2, 0, 1]}
    items = np.zeros((7, 3), np.float32)
    for i, name in enumerate(data.item_ids, 1):
        items[i] = vec[name]
    ndcg = user_ndcg(items, data)
    assert ndcg[0] == pytest.approx(1.0)  # d is nearest to c, the newest of u1's history
    # move d away from everything: u1's target falls in the ranking, u2's does not move
    items[data.item_ids.index("d") + 1] = [-1, -1, -1]
    worse = user_ndcg(items, data)
    assert worse[0] < 1.0 and worse[1] == ndcg[1]


def test_compare_reports_the_paired_interval_against_the_first_arm() -> None:
    ref = Arm("fp32", np.tile([1.0, 0.5, 0.0, 0.0], 10), 1.0, 1.0, 1.0)
    same = Arm("int8", ref.ndcg.copy(), 0.5, 0.99, 0.999)
    worse = Arm("bad", np.zeros(40), 0.5, 0.5, 0.9)
    rows = compare([ref, same, worse], resamples=500)
    assert "diff" not in rows[0]
    assert rows[1]["diff"] == 0.0 and rows[1]["width"] == 0.0 and rows[1]["contains_zero"]
    assert rows[2]["diff"] == pytest.approx(-0.375) and not rows[2]["contains_zero"]
    assert rows[2]["users_changed"] == 20


def test_row_cosines_leave_zero_rows_out() -> None:
    a = np.array([[0, 0], [1, 0], [0, 2]], np.float32)
    b = np.array([[0, 0], [1, 1], [0, 1]], np.float32)
    assert row_cosines(a, b) == pytest.approx([np.sqrt(0.5), 1.0])
