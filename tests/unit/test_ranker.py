"""The built-in ranker: fused profile directions as queries, and a stable version tag."""

from __future__ import annotations

import numpy as np
import pytest

from llmrec_stream.profiles.fusion import fuse, normalize
from llmrec_stream.profiles.store import ProfileState
from llmrec_stream.ranking.fused import FusedProfileRanker
from llmrec_stream.ranking.protocol import Ranker

DIM = 6


def vec(*xs: float) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[: len(xs)] = xs
    return v


def state(text: np.ndarray, behaviour: np.ndarray, user: str = "u") -> ProfileState:
    return ProfileState(user, (True,), text, behaviour, frozenset())


def test_fused_ranker_keeps_the_ranker_protocol() -> None:
    ranker: Ranker = FusedProfileRanker()
    assert ranker.version


def test_version_is_stable_and_names_the_mix() -> None:
    assert FusedProfileRanker().version == "fused-v1(mix_text=0.5)"
    assert FusedProfileRanker(0.25).version == "fused-v1(mix_text=0.25)"
    assert FusedProfileRanker(1.0).version == "fused-v1(mix_text=1)"
    assert FusedProfileRanker(0.3).version == FusedProfileRanker(0.3).version
    assert FusedProfileRanker(0.3).version != FusedProfileRanker(0.4).version


def test_no_states_no_queries() -> None:
    q = FusedProfileRanker().queries([])
    assert q.shape[0] == 0
    assert q.dtype == np.float32


def test_one_query_row_per_state_in_order() -> None:
    states = [
        state(vec(2, 0), vec(0, 3), "a"),
        state(vec(1, 0), vec(), "b"),
        state(vec(), vec(0, 0, 5), "c"),
        state(vec(), vec(), "d"),
    ]
    q = FusedProfileRanker(0.5).queries(states)
    assert q.shape == (4, DIM)
    assert q.dtype == np.float32
    s = float(np.sqrt(0.5))
    np.testing.assert_allclose(q[0], vec(s, s), rtol=1e-6)
    np.testing.assert_allclose(q[1], vec(1), rtol=1e-6)  # text only: full strength
    np.testing.assert_allclose(q[2], vec(0, 0, 1), rtol=1e-6)  # behaviour only
    assert not np.any(q[3])  # no signal yet: an all-zero row


@pytest.mark.parametrize("mix", [0.0, 0.2, 0.5, 0.9, 1.0])
def test_rows_are_the_fused_direction(mix: float) -> None:
    rng = np.random.default_rng(4)
    states = [
        state(
            rng.standard_normal(DIM).astype(np.float32), rng.standard_normal(DIM).astype(np.float32)
        )
        for _ in range(5)
    ]
    q = FusedProfileRanker(mix).queries(states)
    for row, s in zip(q, states, strict=True):
        np.testing.assert_allclose(row, fuse(s.text, s.behaviour, mix), rtol=1e-6)
        assert np.linalg.norm(row) == pytest.approx(1.0, rel=1e-5)


def test_mix_extremes_pick_one_side() -> None:
    st = state(vec(3, 4), vec(0, 0, 1))
    np.testing.assert_allclose(FusedProfileRanker(1.0).queries([st])[0], normalize(vec(3, 4)))
    np.testing.assert_allclose(FusedProfileRanker(0.0).queries([st])[0], vec(0, 0, 1))


def test_query_ranks_the_liked_item_first() -> None:
    items = np.stack([vec(1), vec(0, 1), vec(0, 0, 1)])
    q = FusedProfileRanker(0.5).queries([state(vec(0, 2), vec(0, 1, 0.1))])
    assert int(np.argmax(items @ q[0])) == 1


def test_queries_do_not_change_the_states() -> None:
    text, beh = vec(3, 4), vec(0, 2)
    st = state(text.copy(), beh.copy())
    FusedProfileRanker().queries([st])
    np.testing.assert_array_equal(st.text, text)
    np.testing.assert_array_equal(st.behaviour, beh)
