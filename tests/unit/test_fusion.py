"""Profile maths: event weights, time decay, fusion, and the numpy reference profile.

The Lua script in Redis applies the same maths; ``reference_profile`` is what integration
tests compare Redis against, so its properties (order independence above all: Kafka does not
order events across partitions) are pinned here first.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrec_stream.events.models import Click, Comment, Purchase, UserAttributes, UserEvent
from llmrec_stream.profiles.fusion import (
    FusionWeights,
    Vector,
    attribute_fields,
    behaviour_weight,
    contribution,
    decay,
    event_kind,
    fuse,
    normalize,
    rating_scale,
    reference_profile,
)

W = FusionWeights()
DIM = 8
DAY_MS = 24 * 3600 * 1000
T0 = 1_700_000_000_000


def unit(*xs: float) -> Vector:
    v = np.zeros(DIM, dtype=np.float32)
    v[: len(xs)] = xs
    return normalize(v)


def rand_unit(rng: np.random.Generator) -> Vector:
    return normalize(rng.standard_normal(DIM).astype(np.float32))


def click(ts: int = T0, item: str = "i") -> Click:
    return Click("e", ts, "u", item)


def purchase(ts: int = T0, amount: float = 10.0) -> Purchase:
    return Purchase("e", ts, "u", "i", amount, 1)


def review(rating: int | None, ts: int = T0, item: str | None = "i") -> Comment:
    return Comment("e", ts, "u", "text", item_id=item, rating=rating)


# --- rating_scale and behaviour_weight -------------------------------------------------------


@pytest.mark.parametrize(
    ("rating", "scale"), [(1, -1.0), (2, -0.5), (3, 0.0), (4, 0.5), (5, 1.0), (None, 0.5)]
)
def test_rating_scale(rating: int | None, scale: float) -> None:
    assert rating_scale(rating) == scale


def test_purchase_weighs_more_than_click_by_default() -> None:
    assert behaviour_weight(purchase(), W) > behaviour_weight(click(), W) > 0
    assert (behaviour_weight(click(), W), behaviour_weight(purchase(), W)) == (1.0, 3.0)


def test_one_star_review_is_negative() -> None:
    assert behaviour_weight(review(1), W) == -W.review
    assert behaviour_weight(review(5), W) == W.review
    assert behaviour_weight(review(3), W) == 0.0
    assert behaviour_weight(review(None), W) == 0.5 * W.review


def test_comment_without_item_has_no_behaviour_weight() -> None:
    assert behaviour_weight(review(5, item=None), W) == 0.0
    assert behaviour_weight(UserAttributes("e", T0, "u"), W) == 0.0


def test_weights_are_configurable() -> None:
    w = FusionWeights(click=0.25, purchase=7.0, review=4.0)
    assert behaviour_weight(click(), w) == 0.25
    assert behaviour_weight(purchase(), w) == 7.0
    assert behaviour_weight(review(1), w) == -4.0


def test_event_kind() -> None:
    kinds = [event_kind(e) for e in (review(5), click(), purchase(), UserAttributes("e", 0, "u"))]
    assert kinds == ["c", "k", "p", "u"]


# --- contribution ----------------------------------------------------------------------------


def test_contribution_of_a_review_has_text_and_signed_item_parts() -> None:
    t, i = unit(1, 0), unit(0, 1)
    tc, bc = contribution(review(1), t, i, FusionWeights(comment_text=0.5, review=2.0))
    assert tc is not None and bc is not None
    assert tc.dtype == np.float32 and bc.dtype == np.float32
    np.testing.assert_allclose(tc, 0.5 * t)
    np.testing.assert_allclose(bc, -2.0 * i)


def test_contribution_of_a_click_is_behaviour_only() -> None:
    tc, bc = contribution(click(), None, unit(0, 1), W)
    assert tc is None
    assert bc is not None
    np.testing.assert_allclose(bc, unit(0, 1))


def test_contribution_is_none_without_vectors_or_weight() -> None:
    assert contribution(click(), None, None, W) == (None, None)
    tc, bc = contribution(review(3), unit(1), unit(0, 1), W)  # 3★: neutral, no behaviour part
    assert tc is not None and bc is None
    tc, bc = contribution(review(5, item=None), unit(1), None, W)
    assert tc is not None and bc is None


def test_contribution_does_not_alias_its_inputs() -> None:
    t, i = unit(1), unit(0, 1)
    tc, bc = contribution(purchase(), t, i, W)
    assert tc is not None and bc is not None
    tc += 1
    bc += 1
    np.testing.assert_array_equal(t, unit(1))
    np.testing.assert_array_equal(i, unit(0, 1))


# --- decay -----------------------------------------------------------------------------------


def test_decay_halves_at_the_half_life() -> None:
    assert decay(0, 3600) == 1.0
    assert decay(3600 * 1000, 3600) == pytest.approx(0.5)
    assert decay(2 * 3600 * 1000, 3600) == pytest.approx(0.25)
    assert decay(W.half_life_s * 1000, W.half_life_s) == pytest.approx(0.5)


@given(
    a=st.floats(min_value=0, max_value=1e10),
    b=st.floats(min_value=0, max_value=1e10),
    h=st.floats(min_value=1, max_value=1e8),
)
def test_decay_is_multiplicative_and_bounded(a: float, b: float, h: float) -> None:
    assert 0.0 <= decay(a, h) <= 1.0
    assert decay(a + b, h) == pytest.approx(decay(a, h) * decay(b, h), rel=1e-9, abs=1e-300)


# --- fuse ------------------------------------------------------------------------------------


def test_fuse_mixes_two_unit_directions() -> None:
    t, b = unit(3, 0), unit(0, 4)
    q = fuse(3 * t, 4 * b, 0.5)  # the lengths must not matter, only the directions
    np.testing.assert_allclose(q, unit(1, 1), rtol=1e-6)
    assert np.linalg.norm(q) == pytest.approx(1.0, rel=1e-6)


def test_fuse_mix_extremes() -> None:
    t, b = unit(1, 0), unit(0, 1)
    np.testing.assert_allclose(fuse(t, b, 1.0), t, atol=1e-7)
    np.testing.assert_allclose(fuse(t, b, 0.0), b, atol=1e-7)


def test_fuse_zero_side_gives_its_share_to_the_other() -> None:
    zero = np.zeros(DIM, dtype=np.float32)
    np.testing.assert_allclose(fuse(5 * unit(1, 2), zero, 0.9), unit(1, 2), rtol=1e-6)
    np.testing.assert_allclose(fuse(zero, 0.1 * unit(0, 1), 0.9), unit(0, 1), rtol=1e-6)


def test_fuse_both_zero_is_zero() -> None:
    zero = np.zeros(DIM, dtype=np.float32)
    q = fuse(zero, zero, 0.5)
    assert q.shape == (DIM,)
    assert not np.any(q)


def test_fuse_opposite_directions_cancel_to_zero_not_nan() -> None:
    q = fuse(unit(1), -unit(1), 0.5)
    assert np.all(np.isfinite(q)) and not np.any(q)


def _has_normal_norm(v: Vector) -> bool:
    # Vectors below ~1e-19 are pinned by test_fuse_of_a_tiny_vector_is_unit.
    norm = float(np.linalg.norm(v.astype(np.float64)))
    return norm == 0.0 or norm > 1e-12


vectors = (
    st.lists(
        st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, width=32),
        min_size=DIM,
        max_size=DIM,
    )
    .map(lambda xs: np.array(xs, dtype=np.float32))
    .filter(_has_normal_norm)
)


@settings(max_examples=200, deadline=None)
@given(t=vectors, b=vectors, mix=st.floats(min_value=0, max_value=1))
def test_fuse_is_unit_or_zero(t: Vector, b: Vector, mix: float) -> None:
    q = fuse(t, b, mix)
    assert q.shape == (DIM,)
    assert np.all(np.isfinite(q))
    norm = float(np.linalg.norm(q))
    assert norm == pytest.approx(1.0, abs=1e-5) or norm == 0.0


@pytest.mark.parametrize("size", [1e-22, 1e-25, 1e-30])
def test_fuse_of_a_tiny_vector_is_unit(size: float) -> None:
    tiny = unit(1, 1) * np.float32(size)
    assert np.any(tiny)
    q = fuse(np.zeros(DIM, dtype=np.float32), tiny, 0.5)
    assert float(np.linalg.norm(q.astype(np.float64))) == pytest.approx(1.0, abs=1e-5)


# --- reference_profile -----------------------------------------------------------------------


def _world(seed: int, n: int) -> list[tuple[UserEvent, Vector | None, Vector | None]]:
    rng = np.random.default_rng(seed)
    pyrng = random.Random(seed)
    out: list[tuple[UserEvent, Vector | None, Vector | None]] = []
    for j in range(n):
        ts = T0 + pyrng.randrange(0, 30 * DAY_MS)
        kind = pyrng.choice(["click", "purchase", "review", "comment", "attrs"])
        event: UserEvent
        if kind == "click":
            event, tv, iv = click(ts, f"i{j}"), None, rand_unit(rng)
        elif kind == "purchase":
            event, tv, iv = purchase(ts, amount=float(j)), None, rand_unit(rng)
        elif kind == "review":
            event = review(pyrng.choice([1, 2, 3, 4, 5, None]), ts)
            tv, iv = rand_unit(rng), rand_unit(rng)
        elif kind == "comment":
            event, tv, iv = review(None, ts, item=None), rand_unit(rng), None
        else:
            event, tv, iv = UserAttributes("e", ts, "u", numeric={"n": float(j)}), None, None
        out.append((event, tv, iv))
    return out


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), perm=st.randoms(use_true_random=False))
def test_decayed_sum_does_not_depend_on_arrival_order(seed: int, perm: random.Random) -> None:
    events = _world(seed, 25)
    shuffled = list(events)
    perm.shuffle(shuffled)
    in_order = sorted(events, key=lambda e: e[0].ts)
    a = reference_profile(in_order, DIM, W)
    b = reference_profile(shuffled, DIM, W)
    # Each decayed term is formed in float32 (f * float32 contribution), hence the tolerance.
    np.testing.assert_allclose(a.text, b.text, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.behaviour, b.behaviour, rtol=1e-5, atol=1e-6)
    moving = [
        e.ts
        for e, tv, iv in events
        if tv is not None or (iv is not None and behaviour_weight(e, W) != 0)
    ]
    assert a.t_ref == b.t_ref == max(moving)
    assert a.counts == b.counts
    assert a.spend == pytest.approx(b.spend)


def test_decayed_sum_matches_the_closed_form() -> None:
    events = _world(3, 40)
    prof = reference_profile(events, DIM, W)
    t_ref = prof.t_ref
    assert t_ref is not None
    text = np.zeros(DIM)
    beh = np.zeros(DIM)
    for event, tv, iv in events:
        tc, bc = contribution(event, tv, iv, W)
        f = 2.0 ** (-(t_ref - event.ts) / (W.half_life_s * 1000))
        if tc is not None:
            text += f * tc
        if bc is not None:
            beh += f * bc
    np.testing.assert_allclose(prof.text, text, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(prof.behaviour, beh, rtol=1e-6, atol=1e-9)


def test_out_of_order_old_event_decays_relative_to_the_newest() -> None:
    w = FusionWeights(half_life_s=3600.0)
    new, old = unit(1, 0), unit(0, 1)
    hour = 3600 * 1000
    prof = reference_profile([(click(T0 + 2 * hour), None, new), (click(T0), None, old)], DIM, w)
    assert prof.t_ref == T0 + 2 * hour  # the late, older event does not move the reference
    np.testing.assert_allclose(prof.behaviour, new + 0.25 * old, rtol=1e-6)


def test_newer_event_decays_what_came_before() -> None:
    w = FusionWeights(half_life_s=3600.0)
    a, b = unit(1, 0), unit(0, 1)
    hour = 3600 * 1000
    prof = reference_profile([(click(T0), None, a), (click(T0 + hour), None, b)], DIM, w)
    assert prof.t_ref == T0 + hour
    np.testing.assert_allclose(prof.behaviour, 0.5 * a + b, rtol=1e-6)


def test_bad_review_pushes_behaviour_away_from_the_item() -> None:
    rng = np.random.default_rng(5)
    item = rand_unit(rng)
    history = [(click(T0 + j, f"o{j}"), None, rand_unit(rng)) for j in range(5)]
    before = reference_profile(history, DIM, W)
    after = reference_profile([*history, (review(1, T0 + 10), unit(1), item)], DIM, W)
    change = after.behaviour - before.behaviour
    assert float(change @ item) < 0
    assert float(after.behaviour @ item) < float(before.behaviour @ item)
    good = reference_profile([*history, (review(5, T0 + 10), unit(1), item)], DIM, W)
    assert float((good.behaviour - before.behaviour) @ item) > 0


def test_neutral_review_leaves_behaviour_alone_but_counts_text() -> None:
    prof = reference_profile([(review(3), unit(1), unit(0, 1))], DIM, W)
    assert not np.any(prof.behaviour)
    np.testing.assert_allclose(prof.text, unit(1))
    assert prof.counts == {"c": 1}


def test_events_without_vectors_do_not_set_the_reference_time() -> None:
    prof = reference_profile(
        [
            (UserAttributes("e", T0 + 99 * DAY_MS, "u"), None, None),
            (click(T0 + 50 * DAY_MS), None, None),
            (click(T0), None, unit(1)),
        ],
        DIM,
        W,
    )
    assert prof.t_ref == T0
    np.testing.assert_allclose(prof.behaviour, unit(1))


def test_counts_spend_and_attributes() -> None:
    events: list[tuple[UserEvent, Vector | None, Vector | None]] = [
        (click(T0), None, unit(1)),
        (click(T0 + 1), None, unit(1)),
        (purchase(T0 + 2, amount=19.99), None, unit(0, 1)),
        (purchase(T0 + 3, amount=5.01), None, None),
        (review(5, T0 + 4), unit(1), unit(1)),
        (
            UserAttributes("e", T0 + 5, "u", "25-34", "f", "low", {"tenure": 3, "b": 1.5}),
            None,
            None,
        ),
        (UserAttributes("e", T0 + 6, "u", spend_level="high"), None, None),
    ]
    prof = reference_profile(events, DIM, W)
    assert prof.counts == {"k": 2, "p": 2, "c": 1, "u": 2}
    assert prof.spend == pytest.approx(25.0)
    # The later update changes what it carries, field by field; "unknown" changes nothing.
    assert prof.attributes == {
        "age_band": "25-34",
        "gender": "f",
        "spend_level": "high",
        "num.b": "1.5",
        "num.tenure": "3.0",
    }


def test_empty_profile() -> None:
    prof = reference_profile([], DIM, W)
    assert prof.t_ref is None
    assert prof.counts == {} and prof.spend == 0.0 and prof.attributes == {}
    assert prof.text.shape == prof.behaviour.shape == (DIM,)
    assert not np.any(prof.text) and not np.any(prof.behaviour)


def test_attribute_fields_are_flat_strings_in_sorted_order() -> None:
    fields = attribute_fields(UserAttributes("e", 0, "u", "55+", "m", "mid", {"z": 2, "a": 0.1}))
    assert fields == {
        "age_band": "55+",
        "gender": "m",
        "spend_level": "mid",
        "num.a": "0.1",
        "num.z": "2.0",
    }
    assert list(fields)[3:] == ["num.a", "num.z"]
    assert all(isinstance(v, str) for v in fields.values())
    assert float(fields["num.a"]) == 0.1  # repr round-trips exactly


def test_half_life_in_days_matches_the_default() -> None:
    assert W.half_life_s == 7 * 24 * 3600
    assert decay(7 * DAY_MS, W.half_life_s) == pytest.approx(0.5)
    assert math.isclose(decay(14 * DAY_MS, W.half_life_s), 0.25)
