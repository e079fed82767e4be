"""The aspect term of the ranking (issue 14, item 5): its sign, what it lifts, its reasons."""

from __future__ import annotations

import json
from pathlib import Path

import fastjsonschema
import numpy as np

from llmrec_stream import explain
from llmrec_stream.events.codec import SCHEMAS_DIR
from llmrec_stream.profiles import recs
from llmrec_stream.profiles.recs import MAX_REASONS
from llmrec_stream.profiles.store import CommentEntry, ProfileState
from llmrec_stream.publish import recommendation_record
from llmrec_stream.ranking.aspects import Lift, rerank, user_vector
from llmrec_stream.sentiment import AspectAnchors

NAMES = ("price", "quality", "delivery", "fit")
validate_rec = fastjsonschema.compile(json.loads((SCHEMAS_DIR / "recommendation.json").read_text()))


def _top() -> list[tuple[str, float]]:
    return [("a", 0.90), ("b", 0.89), ("c", 0.88), ("d", 0.70), ("e", 0.69)]


def _mentions() -> np.ndarray:
    m = np.zeros((5, 4))
    m[0, 0] = m[1, 0] = 0.5  # a and b talk of price
    m[3, 1] = 0.5  # d talks of quality
    return m


def test_a_complaint_steers_away_and_praise_toward_with_a_positive_weight() -> None:
    complains = user_vector([-0.5], 4)
    new, lifts = rerank(_top(), complains, _mentions(), 1.0, 3, NAMES)
    assert [i for i, _ in new] == ["c", "d", "e"]  # a and b fell by 0.25
    assert lifts == {"d": Lift("price", 0.0), "e": Lift("price", 0.0)}  # price pushed them in
    praises_quality = user_vector([0.0, 0.5], 4)
    new, lifts = rerank(_top(), praises_quality, _mentions(), 1.0, 3, NAMES)
    assert [i for i, _ in new] == ["d", "a", "b"]
    assert new[0][1] == 0.70 + 0.25  # the published score is the sum
    assert lifts == {"d": Lift("quality", 0.25)}
    # a negative weight reads the complaint as a need: toward price talk
    new, _ = rerank(_top(), complains, _mentions(), -1.0, 3, NAMES)
    assert [i for i, _ in new] == ["a", "b", "c"]


def test_weight_zero_or_no_scores_keeps_the_rankers_order() -> None:
    for user, weight in ((user_vector([-0.5], 4), 0.0), (user_vector([], 4), 1.0)):
        new, lifts = rerank(_top(), user, _mentions(), weight, 3, NAMES)
        assert new == _top()[:3] and lifts == {}


def _anchors() -> AspectAnchors:
    eye = np.eye(4, 16, dtype=np.float32)
    return AspectAnchors(NAMES, eye, (0.2, 0.2, 0.2, 0.2))


def _state(vectors: list[np.ndarray]) -> ProfileState:
    comments = tuple(CommentEntry(100 + n, 1, 2, 10 + n, explain.sketch(v.astype(np.float32)))
                     for n, v in enumerate(vectors))
    return ProfileState("u", (), np.zeros(16, np.float32), np.zeros(16, np.float32),
                        frozenset(), comments=comments, aspects=(-0.5, 0.0, 0.0, 0.0))


def test_the_aspect_reason_cites_the_comment_that_set_it_and_survives_the_cache() -> None:
    rng = np.random.default_rng(3)
    off_topic = rng.standard_normal(16)
    off_topic[:4] = 0
    about_price = np.eye(1, 16).ravel() * 3 + rng.standard_normal(16) * 0.2
    state = _state([off_topic, about_price])
    base = [explain.Reason("click", "llmrec.clicks", 0, 5, "x", 0.9)] * 3
    out = explain.with_aspects(base, ["x1", "x2", "x3"], {"x3": Lift("price", 0.0)}, state,
                               _anchors())
    assert out[:2] == base[:2]
    assert out[2] is not None and out[2].record() == {
        "kind": "aspect", "topic": "llmrec.comments", "partition": 2, "offset": 11,
        "aspect": "price"}
    record = recommendation_record("u", [("x1", 0.9), ("x2", 0.8), ("x3", 0.7)], "m", ["e"],
                                   1, out)
    validate_rec(json.loads(record))
    pulled = recs.decode("u", recs.encode(record))
    assert pulled["reasons"] == json.loads(record)["reasons"]
    # no kept comment close to the anchor: the event reason stays
    alone = _state([off_topic])
    assert explain.with_aspects(base, ["x1", "x2", "x3"], {"x3": Lift("price", 0.0)}, alone,
                                _anchors()) == base


def test_no_aspect_reason_when_the_list_already_cites_the_most_the_cache_holds() -> None:
    about_price = np.eye(1, 16).ravel()
    state = _state([about_price])
    base = [explain.Reason("click", "llmrec.clicks", 0, n, f"i{n}", 0.5)
            for n in range(MAX_REASONS)] + [explain.Reason("click", "llmrec.clicks", 0, 0,
                                                            "i0", 0.4)]
    items = [f"x{n}" for n in range(len(base))]
    out = explain.with_aspects(base, items, {items[-1]: Lift("price", 0.0)}, state, _anchors())
    assert out == base  # 15 distinct events cited already: no room for the aspect
    # the same events cited with other similarities are still few: the aspect reason fits
    few = [explain.Reason("click", "llmrec.clicks", 0, n % 3, f"i{n % 3}", n / 20)
           for n in range(16)]
    out = explain.with_aspects(few, items, {items[-1]: Lift("price", 0.0)}, state, _anchors())
    assert out[:-1] == few[:-1] and out[-1] is not None and out[-1].kind == "aspect"


def test_an_aspect_reason_without_its_aspect_is_refused_by_the_schema() -> None:
    record = json.loads(recommendation_record("u", [("x", 0.5)], "m", ["e"], 1))
    record["reasons"] = [{"kind": "aspect", "topic": "llmrec.comments", "partition": 0,
                          "offset": 1}]
    try:
        validate_rec(record)
    except fastjsonschema.JsonSchemaException:
        pass
    else:
        raise AssertionError("an aspect reason without its aspect passed the schema")
    record["reasons"] = [{"kind": "click", "topic": "llmrec.clicks", "partition": 0,
                          "offset": 1, "aspect": "price"}]
    try:
        validate_rec(record)
    except fastjsonschema.JsonSchemaException:
        pass
    else:
        raise AssertionError("a click reason with an aspect passed the schema")


def test_the_schema_file_names_the_aspects_the_heads_know() -> None:
    from llmrec_stream.sentiment import ASPECTS

    schema = json.loads(Path(SCHEMAS_DIR / "recommendation.json").read_text())
    reason = schema["properties"]["reasons"]["items"]["oneOf"][1]
    assert tuple(reason["properties"]["aspect"]["enum"]) == ASPECTS
    assert "aspect" in reason["properties"]["kind"]["enum"]


def test_the_term_over_a_real_ranker_and_index_and_the_same_for_the_shadow() -> None:
    from llmrec_stream.ranking.aspects import AspectTerm
    from llmrec_stream.ranking.fused import FusedProfileRanker
    from llmrec_stream.retrieval.exact import ExactIndex

    rng = np.random.default_rng(4)
    base = rng.standard_normal(16)
    base[:4] = 0
    vecs = []
    for n in range(8):  # all near one direction; the even ones also along the price anchor
        v = base + rng.standard_normal(16) * 0.05
        if n % 2 == 0:
            v[0] = 1.5
        vecs.append(v / np.linalg.norm(v))
    index = ExactIndex(16)
    index.upsert([f"i{n}" for n in range(8)], np.stack(vecs).astype(np.float32))
    query = base.copy()
    query[0] = 1.0  # the user's behaviour leans to the price-talking items
    beh = (query / np.linalg.norm(query)).astype(np.float32)
    sour = ProfileState("sour", (), np.zeros(16, np.float32), beh, frozenset(),
                        aspects=(-1.0, 0.0, 0.0, 0.0))
    calm = ProfileState("calm", (), np.zeros(16, np.float32), beh, frozenset())
    ranker = FusedProfileRanker()
    term = AspectTerm(_anchors(), 2.0, 4)
    ranked, lifted = term.rank(ranker, [sour, calm], 3, index)
    plain = ranker.rank([sour, calm], 3, index)
    assert ranked[1] == plain[1] and lifted[1] == {}  # no aspect scores: the ranker's list
    assert ranked[0] is not None and plain[0] is not None
    assert all(int(i[1:]) % 2 == 1 for i, _ in ranked[0][1])  # no price talk for the sour one
    assert all(int(i[1:]) % 2 == 0 for i, _ in plain[0][1])
    assert set(lifted[0]) == {i for i, _ in ranked[0][1]} - {i for i, _ in plain[0][1]}
    wrapped = term.wrap(ranker)
    assert wrapped.version == ranker.version
    assert wrapped.rank([sour, calm], 3, index) == ranked
