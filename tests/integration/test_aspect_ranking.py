"""Aspect preferences in the ranking (issue 14, item 5) through the real broker, live workers and
the real Redis.

Two users with the same behaviour (the same clicks); one of them writes a strong price
complaint, the other a comment that mentions no aspect. Neither comment names an item, and the
workers run with ``LLMREC_MIX_TEXT=0`` (the query is the behaviour direction), so the only
thing that can tell the two lists apart is the aspect term. The catalog holds headphones whose
text is about their price and headphones whose text is not.

- a worker with ``LLMREC_ASPECT_RANK_WEIGHT=0`` publishes the same list to both;
- a worker with weight 2 steers the complainer away from the price-talking headphones (a
  positive weight rewards agreement: `llmrec_stream.ranking.aspects`), and the items that took
  their places carry an ``aspect`` reason naming price and citing the complaint's coordinates.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
import redis

from llmrec_stream.demo.watch import OutputWatcher
from llmrec_stream.devstack import DevStack
from llmrec_stream.events import topics
from llmrec_stream.events.codec import SCHEMAS_DIR
from llmrec_stream.kafka_log import read_records
from llmrec_stream.profiles import recs
from llmrec_stream.sources.base import OutboundEvent, envelope
from llmrec_stream.waiting import wait_until
from tests.integration.live import LiveWorker, worker_with_catalog

validate_rec = fastjsonschema.compile(json.loads((SCHEMAS_DIR / "recommendation.json").read_text()))
TOP_K = 6
COMPLAINT = "Way too expensive. Overpriced, not worth the money at this price."
NEUTRAL = "I bought these headphones last week."
PRICEY = [  # headphones whose text is about their price
    "budget over-ear headphones. Price, cheap, expensive, value for money, cost",
    "over-ear headphones, the price, cheap, affordable, worth the cost",
    "closed-back headphones at a low price, good value for the money, cheap",
    "studio headphones, expensive but worth the price, costly",
    "on-ear headphones, bargain price, inexpensive, great value, cheap deal",
    "gaming headphones, overpriced, the cost is too high for the money",
]
PLAIN = [  # headphones whose text is not
    "wireless over-ear headphones with deep bass and noise cancelling",
    "over-ear headphones with long battery life and soft ear cushions",
    "closed-back studio headphones with a detachable cable and flat response",
    "on-ear headphones that fold flat, with a built-in microphone",
    "gaming headphones with surround sound and a boom microphone",
    "open-back headphones with a wide soundstage and velour pads",
]
OTHER = [
    "stainless steel kitchen knife set with a wooden block",
    "non-stick frying pan with a glass lid",
    "ceramic coffee mug, dishwasher safe",
    "cotton bath towels, soft and absorbent",
]


def _items() -> list[OutboundEvent]:
    out = []
    for kind, texts in (("pricey", PRICEY), ("plain", PLAIN), ("other", OTHER)):
        for n, text in enumerate(texts):
            item_id = f"asp-{kind}-{n}"
            category = "Kitchen" if kind == "other" else "Headphones"
            value = {**envelope(f"{item_id}-v1", 0), "item_id": item_id,
                     "title": text.split(",")[0], "description": text, "tags": [],
                     "category": category}
            out.append(OutboundEvent(topics.ITEMS, item_id, value))
    return out


ITEMS = _items()


@pytest.fixture(scope="module")
def stack() -> Iterator[DevStack]:
    with DevStack() as own:
        yield own


def _worker(stack: DevStack, encoder_dir: Path, logdir: Path,
            weight: str) -> Any:
    return worker_with_catalog(stack, encoder_dir, logdir, ITEMS, env={
        "LLMREC_TEXT_SIGNALS": "1", "LLMREC_ASPECT_RANK_WEIGHT": weight,
        "LLMREC_MIX_TEXT": "0", "LLMREC_TOP_K": str(TOP_K)})


@pytest.fixture
def watcher(stack: DevStack) -> Iterator[OutputWatcher]:
    w = OutputWatcher(stack.kafka_bootstrap)
    w.start(stack.partitions)
    time.sleep(0.5)
    try:
        yield w
    finally:
        w.stop()


def _event(topic: str, user: str, n: int, **fields: Any) -> OutboundEvent:
    value = {**envelope(f"{user}-{n}", 1_000 + n), "user_id": user, **fields}
    return OutboundEvent(topic, user, value)


def _pair(worker: LiveWorker, watcher: OutputWatcher, prefix: str) -> tuple[Any, Any, str]:
    """The complainer's and the other user's records after the same clicks; the complaint's
    event id."""
    sour, calm = f"{prefix}-sour", f"{prefix}-calm"
    last: dict[str, str] = {}
    for user, text in ((sour, COMPLAINT), (calm, NEUTRAL)):
        evs = [_event(topics.CLICKS, user, 0, item_id="asp-plain-0"),
               _event(topics.CLICKS, user, 1, item_id="asp-pricey-0"),
               _event(topics.COMMENTS, user, 2, text=text)]
        worker.publish(evs)
        last[user] = evs[-1].value["event_id"]

    def settled(user: str) -> dict[str, Any] | None:
        rec = watcher.snapshot().latest.get(user)
        return rec if rec is not None and last[user] in rec["event_ids"] else None

    # 120 s: one run of the 2-core machine under a load average of 16 took more than 60
    wait_until(lambda: settled(sour) and settled(calm), 120, "both records")
    return settled(sour), settled(calm), last[sour]


def _pricey(rec: dict[str, Any]) -> int:
    return sum(i.startswith("asp-pricey") for i in rec["items"])


def test_weight_zero_publishes_the_same_list_to_both(
    stack: DevStack, encoder_dir_with_heads: Path, watcher: OutputWatcher,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with _worker(stack, encoder_dir_with_heads, tmp_path_factory.mktemp("asp0"), "0") as worker:
        sour, calm, _ = _pair(worker, watcher, "asp-off")
    print("off:", sour["items"], calm["items"], sour.get("aspects"))
    assert sour["aspects"].get("price", 0) < 0, sour["aspects"]  # the complaint was measured
    assert sour["items"] == calm["items"]
    assert all(r is None or r["kind"] != "aspect" for r in sour["reasons"])


def test_a_price_complaint_steers_the_list_away_from_price_talk(
    stack: DevStack, encoder_dir_with_heads: Path, watcher: OutputWatcher,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with _worker(stack, encoder_dir_with_heads, tmp_path_factory.mktemp("asp2"), "2") as worker:
        sour, calm, complaint_id = _pair(worker, watcher, "asp-on")
        for rec in (sour, calm):
            validate_rec(rec)
        print("on:", sour["items"], calm["items"], sour["aspects"], sour["reasons"])
        assert sour["aspects"]["price"] < 0, sour["aspects"]
        assert "aspects" not in calm or not calm["aspects"], calm["aspects"]
        # the same behaviour, a different list: fewer headphones that talk of price
        assert _pricey(sour) < _pricey(calm), (sour["items"], calm["items"])
        # the items the aspect term brought in say so, citing the complaint, never its text
        log = {(r.topic, r.partition, r.offset): json.loads(r.value)
               for r in read_records(stack.kafka_bootstrap, [topics.COMMENTS],
                                     partitions=stack.partitions, group_id="aspect-test")
               if r.value is not None}
        at = next(k for k, v in log.items() if v["event_id"] == complaint_id)
        entered = [n for n, i in enumerate(sour["items"]) if i not in calm["items"]]
        assert entered
        for n in entered:
            r = sour["reasons"][n]
            assert r == {"kind": "aspect", "aspect": "price", "topic": at[0],
                         "partition": at[1], "offset": at[2]}, (n, r)
        assert all(r is None or r["kind"] != "aspect" for r in calm["reasons"])
        # a pull returns the same reasons
        raw = worker.redis.get(f"u:{{{'asp-on-sour'}}}:recs")
        assert isinstance(raw, bytes)
        cached = recs.decode("asp-on-sour", raw)
        if cached["published_ts"] == sour["published_ts"]:
            assert cached["reasons"] == sour["reasons"]
        metrics = worker.metrics()
        assert metrics['llmrec_aspect_rank_lifted_items_total{aspect="price"}'] >= len(entered)
        assert metrics["llmrec_aspect_rank_lists_total"] >= 1


def test_a_realistic_profile_whose_list_cites_an_aspect_stays_within_4_kb(
    stack: DevStack,
) -> None:
    """The 4 KB budget (test_profiles_redis.py's realistic profile, all four aspects scored)
    with the pull cache's list citing an aspect reason as well: one more reason in the table,
    the longest aspect name, and an index bit more per item."""
    from tests.integration.test_profiles_redis import realistic_profile

    user = realistic_profile(stack)
    r = redis.Redis.from_url(stack.redis_url)
    key = f"u:{{{user}}}:recs"
    raw = r.get(key)
    assert isinstance(raw, bytes)
    pulled = recs.decode(user, raw)
    before = r.memory_usage(key, samples=0)
    aspect = {"kind": "aspect", "topic": topics.COMMENTS, "partition": 3,
              "offset": 1_000_030, "aspect": "delivery"}
    n = len(pulled["items"])
    record = json.dumps({
        "schema_version": 2, "user_id": user, "items": pulled["items"],
        "scores": pulled["scores"], "model_version": pulled["model_version"],
        "event_ids": ["p88", "p89"], "trigger_ts": pulled["trigger_ts"],
        "published_ts": pulled["published_ts"],
        "reasons": [*pulled["reasons"][: n - 3], aspect, aspect, aspect],
        "placements": [None] * n,
    }).encode()
    validate_rec(json.loads(record))
    r.set(key, recs.encode(record))
    raw = r.get(key)
    assert isinstance(raw, bytes) and recs.decode(user, raw)["reasons"][-1] == aspect
    keys = [k for k in r.scan_iter(match=f"u:{{{user}}}:*")]
    usage = {k: r.memory_usage(k, samples=0) for k in keys}
    total = sum(u for u in usage.values() if u)
    print(f"\nbytes per user with an aspect reason: {total} (cache {before} -> "
          f"{usage[key.encode()]}) {usage}")
    assert total <= 4096, usage
