"""Explanations and the pull cache that carries them (issue 14, item 3)."""

from __future__ import annotations

import json
import struct

import numpy as np

from llmrec_stream import explain
from llmrec_stream.explain import Reason
from llmrec_stream.profiles import recs
from llmrec_stream.publish import recommendation_record


def test_reasons_and_placements_survive_the_cache() -> None:
    ranked = [("B00005N5PF", 0.91), ("é中-item", 0.5), ("x" * 128, 0.25)]
    reasons = [
        Reason("purchase", "llmrec.purchases", 3, 1_000_042, "B0AAAA", 0.8),
        Reason("comment", "llmrec.comments", 40, 7, None, 0.6),
        Reason("purchase", "llmrec.purchases", 3, 1_000_042, "B0AAAA", 0.7),
    ]
    record = recommendation_record("u1", ranked, "m", ["e1"], 1234, reasons, [None, "camp", None])
    published = json.loads(record)
    assert published["reasons"][1] == {"kind": "comment", "topic": "llmrec.comments",
                                       "partition": 40, "offset": 7}
    assert published["placements"] == [None, {"sponsored": True, "campaign_id": "camp"}, None]
    pulled = recs.decode("u1", recs.encode(record))
    assert pulled == {k: v for k, v in published.items() if k not in ("schema_version",
                                                                        "event_ids")}


def test_a_format_1_cache_entry_still_decodes() -> None:
    head = struct.pack("<BqqH", 1, 5, 6, 1) + b"m" + struct.pack("<H1f", 1, 0.5)
    blob = head + struct.pack("<H", 2) + b"i1"
    assert recs.decode("u", blob) == {"user_id": "u", "items": ["i1"], "scores": [0.5],
                                      "model_version": "m", "trigger_ts": 5, "published_ts": 6}


def test_a_sketch_estimates_the_cosine() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((200, 384)).astype(np.float32)
    b = (a + rng.standard_normal((200, 384)).astype(np.float32)).astype(np.float32)
    true = np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    est = np.diag(explain.sketch_cosine(explain.sketches(a), explain.sketches(b)))
    assert len(explain.sketch(a[0])) * 8 == explain.SKETCH_BITS
    assert float(np.mean(np.abs(est - true))) < 0.1


def test_a_list_cites_at_most_max_events_and_its_best_when_it_can() -> None:
    rng = np.random.default_rng(2)
    scores = rng.uniform(-1, 1, (20, 30))
    picked = explain._cover(scores, 4)
    assert len(set(picked.tolist())) <= 4
    # each row names the best of the columns the list cites
    cols = sorted(set(picked.tolist()))
    assert all(scores[r, picked[r]] == scores[r, cols].max() for r in range(20))
    few = np.zeros((5, 6))
    few[:, 2], few[0, 4] = 1.0, 2.0
    assert explain._cover(few, 4).tolist() == [4, 2, 2, 2, 2]  # exact: the best of each


def test_the_cache_keeps_scores_and_reasons_exactly_whatever_their_count() -> None:
    rng = np.random.default_rng(3)
    for n_reasons in (0, 1, 2, 3, 7, 8, 15):
        n = 20
        ranked = [(f"i{k}", float(rng.uniform(-30, 30))) for k in range(n)]
        table = [Reason("click", "llmrec.clicks", int(rng.integers(0, 400)),
                        int(rng.integers(0, 2**40)), f"s{j}", 0.5) for j in range(n_reasons)]
        reasons = [None if not table or k % 5 == 4 else table[k % len(table)] for k in range(n)]
        record = recommendation_record("u", ranked, "m", [], 2**41, reasons)
        published = json.loads(record)
        pulled = recs.decode("u", recs.encode(record))
        assert pulled["scores"] == published["scores"]
        assert pulled["reasons"] == published["reasons"]
        assert pulled["published_ts"] == published["published_ts"]
