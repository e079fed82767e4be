"""The recommendation cache layout: what a pull returns is what was published."""

from __future__ import annotations

import json

import pytest

from llmrec_stream.profiles import recs
from llmrec_stream.publish import recommendation_record


def test_a_cached_record_decodes_to_the_published_fields() -> None:
    ranked = [("B00005N5PF", 0.912345), ("é中-item\n2", -0.25), ("x" * 128, 3.5e-5)]
    record = recommendation_record("u1", ranked, "fused-v1(mix_text=0.5)", ["e1", "e2"], 1234)
    published = json.loads(record)
    pulled = recs.decode("u1", recs.encode(record))
    dropped = ("schema_version", "event_ids")
    assert pulled == {k: v for k, v in published.items() if k not in dropped}
    assert len(recs.encode(record)) < len(record)


def test_an_empty_top_k_and_an_unknown_format() -> None:
    record = recommendation_record("u1", [], "m", [], 1)
    assert recs.decode("u1", recs.encode(record))["items"] == []
    with pytest.raises(ValueError, match="format"):
        recs.decode("u1", b"\x09" + recs.encode(record)[1:])
