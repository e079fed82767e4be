"""The demo is an application of the SDK (issue 15, item 4): its records go out through
`llmrec_stream.client.EventProducer` and the recommendations come back through
`RedisRecommendations`, against the real embedded broker, a worker and Redis."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from llmrec_stream.config import Settings
from llmrec_stream.demo.run import run_demo
from llmrec_stream.events import topics
from llmrec_stream.sources.synthetic import synthetic_replay


def test_the_demo_produces_through_the_client_and_reads_back_through_it(
    encoder_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMREC_KAFKA_BOOTSTRAP", "")  # the demo starts its own stack
    monkeypatch.setenv("LLMREC_REDIS_URL", "")
    replay = synthetic_replay(n_items=64, n_users=20, n_events=300, seed=3)
    comment = next(e for e in replay.events if e.topic == topics.COMMENTS)
    # an empty comment: the workers would dead-letter it; the client refuses it at the call
    bad = replace(comment, value={**comment.value, "event_id": "bad-1", "text": ""})
    replay.events.insert(len(replay.events) // 2, bad)

    settings = Settings(encoder_precision="fp32", encoder_dir=str(encoder_dir))
    result = run_demo(replay, settings, rate=300)

    produced = result.produced
    assert dict(produced.refused) == {"empty_text": 1}
    assert produced.accepted == len(replay.items) + len(replay.users) + len(replay.events) - 1
    # refused before it left: no record on the topic, so no dead letter either
    assert sum(result.observed.dead_letters.values()) == 0
    users = {e.key for e in replay.events}
    assert set(result.pulled) == users
    assert set(result.observed.latest) == users
    assert result.pulled_differ == 0
    for user, rec in result.pulled.items():
        assert rec.items == result.observed.latest[user]["items"]
        assert rec.model_version and rec.age_s >= 0
    assert result.taste_hit_rate is not None
    print(f"pulled {len(result.pulled)} users, taste hit rate {result.taste_hit_rate:.2f}")
