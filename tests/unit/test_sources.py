"""Replay sources: the synthetic world's determinism and ground truth, and the real-data loaders.

Every event is checked against the event contract with a small local checker; the real-data
tests read ``../shared/data`` (or ``$LLMREC_DATA_DIR``) and skip when it is absent.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import random
import re
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from llmrec_stream.events.topics import CLICKS, COMMENTS, ITEMS, PURCHASES, USERS
from llmrec_stream.sources import (
    OutboundEvent,
    Replay,
    atomic_replay,
    comment_text_for,
    load_amazon2018,
    load_atomic,
    load_replay,
    synthetic_replay,
)
from llmrec_stream.sources.atomic import split_item_text
from llmrec_stream.sources.base import MAX_TEXT_BYTES, clip_utf8

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("LLMREC_DATA_DIR", REPO.parent / "shared" / "data"))
AMAZON = DATA / "amazon2018"
BEAUTY = AMAZON / "All_Beauty_5.json.gz"
SCIENTIFIC = DATA / "scientific"

_REQUIRED: dict[str, dict[str, type | tuple[type, ...]]] = {
    COMMENTS: {"user_id": str, "text": str},
    CLICKS: {"user_id": str, "item_id": str},
    PURCHASES: {"user_id": str, "item_id": str, "amount": (int, float), "quantity": int},
    ITEMS: {"item_id": str, "title": str, "description": str, "tags": list},
    USERS: {"user_id": str, "age_band": str, "gender": str, "spend_level": str},
}
_KEY_FIELD = {
    COMMENTS: "user_id",
    CLICKS: "user_id",
    PURCHASES: "user_id",
    USERS: "user_id",
    ITEMS: "item_id",
}


def check_event(event: OutboundEvent) -> None:
    """Assert the event contract (fields, types, ranges) for one outbound event."""
    value = event.value
    assert event.topic in _REQUIRED, event.topic
    assert value.get("schema_version") == 1
    assert isinstance(value.get("event_id"), str) and value["event_id"]
    assert type(value.get("ts")) is int and value["ts"] >= 0
    for name, kind in _REQUIRED[event.topic].items():
        assert isinstance(value.get(name), kind), (event.topic, name, value)
        assert not isinstance(value[name], bool), (event.topic, name)
    assert event.key == value[_KEY_FIELD[event.topic]]
    if event.topic == COMMENTS:
        assert 1 <= len(value["text"].encode("utf-8")) <= MAX_TEXT_BYTES
        assert isinstance(value.get("item_id", ""), str)
        if "rating" in value:
            assert type(value["rating"]) is int and 1 <= value["rating"] <= 5
    elif event.topic == PURCHASES:
        assert value["amount"] >= 0 and value["quantity"] >= 1
    elif event.topic == ITEMS:
        assert all(isinstance(tag, str) for tag in value["tags"])
        assert isinstance(value.get("category", ""), str)
    elif event.topic == USERS:
        assert value["age_band"] in {"18-24", "25-34", "35-44", "45-54", "55+"}
        assert value["gender"] in {"f", "m", "x"}
        assert value["spend_level"] in {"low", "mid", "high"}
        numeric = value.get("numeric", {})
        assert all(isinstance(k, str) and isinstance(v, float) for k, v in numeric.items())
    key, body = event.encode()
    assert json.loads(body) == value and key == event.key.encode()


def check_replay(replay: Replay) -> None:
    """Contract, unique ids, catalog/attributes on their topics, events in time order."""
    for event in replay:
        check_event(event)
    ids = [event.value["event_id"] for event in replay]
    assert len(ids) == len(set(ids))
    assert {e.topic for e in replay.items} <= {ITEMS}
    assert {e.topic for e in replay.users} <= {USERS}
    stamps = [event.value["ts"] for event in replay.events]
    assert stamps == sorted(stamps)


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path}; set LLMREC_DATA_DIR or see shared/data")
    return path


# --- synthetic ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> Any:
    return synthetic_replay()


def _bytes(replay: Replay) -> list[tuple[bytes, bytes]]:
    return [event.encode() for event in replay]


def test_same_seed_gives_identical_bytes(world: Any) -> None:
    assert _bytes(synthetic_replay()) == _bytes(world)
    assert _bytes(synthetic_replay(seed=8)) != _bytes(world)


def test_sizes_and_ground_truth(world: Any) -> None:
    assert (len(world.items), len(world.users), len(world.events)) == (300, 200, 5000)
    assert len(world.categories) >= 6
    assert set(world.item_category) == {e.key for e in world.items}
    assert set(world.item_category.values()) == set(world.categories)
    assert set(world.user_taste) == {e.key for e in world.users}
    assert len({e.value["title"] for e in world.items}) == 300
    assert all(e.value["category"] == world.item_category[e.key] for e in world.items)
    small = synthetic_replay(n_items=20, n_users=3, n_events=50, seed=1)
    assert (len(small.items), len(small.users), len(small.events)) == (20, 3, 50)


def test_event_mix_within_tolerance(world: Any) -> None:
    counts = Counter(event.topic for event in world.events)
    for topic, share in ((COMMENTS, 0.3), (CLICKS, 0.5), (PURCHASES, 0.2)):
        assert abs(counts[topic] / 5000 - share) < 0.03, counts
    skewed = Counter(e.topic for e in synthetic_replay(n_events=4000, mix=(0.1, 0.1, 0.8)).events)
    assert abs(skewed[PURCHASES] / 4000 - 0.8) < 0.03, skewed


def test_every_event_is_valid_and_time_ordered(world: Any) -> None:
    check_replay(world)
    first = world.events[0].value["ts"]
    assert all(e.value["ts"] <= first for e in [*world.items, *world.users])
    later = synthetic_replay(n_events=100, start_ts_ms=2_000_000_000_000, mean_gap_ms=10)
    assert later.events[0].value["ts"] >= 2_000_000_000_000
    assert later.events[-1].value["ts"] - 2_000_000_000_000 < 100 * 10 * 3


def test_users_act_mostly_in_their_taste(world: Any) -> None:
    hits = [
        world.item_category[e.value["item_id"]] == world.user_taste[e.key]
        for e in world.events
        if e.topic in (CLICKS, PURCHASES)
    ]
    assert 0.6 < sum(hits) / len(hits) < 0.95
    ratings = Counter(e.value["rating"] for e in world.events if "rating" in e.value)
    assert ratings[4] + ratings[5] > 0.6 * sum(ratings.values())
    assert ratings[1] + ratings[2] > 0


_TOKEN = re.compile(r"[a-z]+")


def _tfidf(docs: dict[str, Counter[str]], idf: dict[str, float]) -> dict[str, dict[str, float]]:
    out = {}
    for name, counts in docs.items():
        vec = {w: c * idf.get(w, 0.0) for w, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        out[name] = {w: v / norm for w, v in vec.items()}
    return out


def test_categories_are_separable_by_vocabulary(world: Any) -> None:
    """A user's comments are closest (TF-IDF cosine) to their primary category's item texts."""
    cat_docs: dict[str, Counter[str]] = defaultdict(Counter)
    for e in world.items:
        text = " ".join([e.value["title"], e.value["description"], *e.value["tags"]])
        cat_docs[world.item_category[e.key]].update(_TOKEN.findall(text.lower()))
    df = Counter(w for counts in cat_docs.values() for w in counts)
    idf = {w: math.log(len(cat_docs) / n) for w, n in df.items()}
    cats = _tfidf(cat_docs, idf)
    user_docs: dict[str, Counter[str]] = defaultdict(Counter)
    n_comments: Counter[str] = Counter()
    for e in world.events:
        if e.topic == COMMENTS:
            user_docs[e.key].update(_TOKEN.findall(e.value["text"].lower()))
            n_comments[e.key] += 1
    users = _tfidf({u: d for u, d in user_docs.items() if n_comments[u] >= 3}, idf)
    assert len(users) > 100
    right = 0
    for user, vec in users.items():
        scores = {c: sum(v * cv.get(w, 0.0) for w, v in vec.items()) for c, cv in cats.items()}
        right += max(scores, key=scores.__getitem__) == world.user_taste[user]
    assert right / len(users) >= 0.9, right / len(users)


def test_comment_text_for_speaks_the_category(world: Any) -> None:
    rng = random.Random(3)
    good = comment_text_for("coffee", rng)
    bad = comment_text_for("coffee", rng, positive=False)
    assert good and bad and good != bad
    assert any(word in f"{good} {bad}".lower() for word in ("coffee", "espresso", "roast", "bean"))
    assert comment_text_for("gardening", random.Random(3)) == comment_text_for(
        "gardening", random.Random(3)
    )
    with pytest.raises(KeyError):
        comment_text_for("no-such-category", rng)


def test_generation_scales_to_large_catalogs() -> None:
    started = time.perf_counter()
    big = synthetic_replay(n_items=10_000, n_users=2_000, n_events=100_000, seed=11)
    elapsed = time.perf_counter() - started
    assert len({e.value["title"] for e in big.items}) == 10_000
    assert len(big.events) == 100_000
    assert elapsed < 30, f"generation took {elapsed:.1f}s"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_items": 3},
        {"n_users": 0},
        {"n_events": -1},
        {"mix": (0.0, 0.0, 0.0)},
        {"mix": (1.0, -1.0, 1.0)},
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        synthetic_replay(**kwargs)


def test_encode_is_compact_utf8() -> None:
    event = OutboundEvent(COMMENTS, "ü1", {"text": "café ☕", "n": 1})
    assert event.encode() == ("ü1".encode(), '{"text":"café ☕","n":1}'.encode())


def test_clip_utf8_never_splits_a_character() -> None:
    text = "é" * 5000  # two bytes each
    clipped = clip_utf8(text, 8191)
    assert clipped == "é" * 4095 and len(clipped.encode()) == 8190
    assert clip_utf8("short") == "short"


# --- Amazon 2018 ----------------------------------------------------------------------------


def _review(reviewer: str, asin: str, day: int, summary: str, text: str) -> str:
    return json.dumps(
        {
            "reviewerID": reviewer,
            "asin": asin,
            "overall": 4.0,
            "summary": summary,
            "reviewText": text,
            "unixReviewTime": day,
        }
    )


def test_amazon_loader_on_a_small_file(tmp_path: Path) -> None:
    path = tmp_path / "Tiny_5.json.gz"
    lines = [
        _review("u2", "A1", 200, "Lovely soap", "ß" * 6000),
        _review("u1", "A1", 100, "", ""),
        _review("u1", "A2", 200, "Great soap smell", "Nice."),
    ]
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    replay = load_amazon2018(path)
    check_replay(replay)
    assert [(e.topic, e.key) for e in replay.events] == [
        (PURCHASES, "u1"),
        (COMMENTS, "u1"),
        (PURCHASES, "u1"),
        (COMMENTS, "u2"),
        (PURCHASES, "u2"),
    ]
    stamps = [e.value["ts"] for e in replay.events]
    assert stamps == [100_000, 200_000, 200_001, 200_002, 200_003]
    long_text = replay.events[3].value["text"]
    assert long_text.startswith("Lovely soap. ß") and len(long_text.encode()) <= MAX_TEXT_BYTES
    assert replay.events[1].value["text"] == "Great soap smell. Nice."
    assert replay.events[1].value["rating"] == 4
    items = {e.key: e.value for e in replay.items}
    assert items["A1"]["title"] == "Product A1" and "soap" in items["A1"]["tags"]
    assert replay.users == []


def test_amazon_same_day_reviews_follow_no_global_item_order(tmp_path: Path) -> None:
    """The files give only the day; ordering a day's reviews by ASIN made every reviewer's
    sequence follow one global item order, which a next-item model learns instead of taste."""
    path = tmp_path / "Tie_5.json.gz"
    asins = ["A1", "A2", "A3", "A4"]
    lines = [_review(f"u{u:02d}", a, 86_400 * (1 + u % 3), f"s {a}", "t")
             for u in range(40) for a in asins]
    lines += [_review(f"u{u:02d}", "A0", 86_400 * 9, "later", "t") for u in range(40)]
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    replay = load_amazon2018(path)
    check_replay(replay)
    sequences: dict[str, list[str]] = {}
    for e in replay.events:
        if e.topic == PURCHASES:
            sequences.setdefault(e.key, []).append(e.value["item_id"])
    orders = [tuple(s[:4]) for s in sequences.values()]
    assert all(sorted(o) == asins for o in orders)  # each reviewer's day, once
    assert all(s[4] == "A0" for s in sequences.values())  # days still in time order
    assert sum(list(o) == asins for o in orders) < len(orders) / 4  # ASIN order: 1 in 24
    assert len(set(orders)) > 10  # no one order for everyone
    firsts = Counter(o[0] for o in orders)
    assert max(firsts.values()) < len(orders) / 2
    assert [(e.key, e.value["item_id"]) for e in load_amazon2018(path).events] == [
        (e.key, e.value["item_id"]) for e in replay.events]  # the same order on every load


def test_amazon_all_beauty_matches_the_readme() -> None:
    replay = load_amazon2018(need(BEAUTY))
    check_replay(replay)
    purchases = [e for e in replay.events if e.topic == PURCHASES]
    assert len(purchases) == 5269
    assert len({e.key for e in purchases}) == 991
    assert len(replay.items) == 85 == len({e.value["item_id"] for e in purchases})
    assert sum(e.topic == COMMENTS for e in replay.events) == 5269
    stamps = [e.value["ts"] for e in replay.events]
    assert all(a < b for a, b in zip(stamps, stamps[1:], strict=False))
    prefix = load_amazon2018(BEAUTY, limit=100)
    assert len(prefix.events) == 200
    assert prefix.events == replay.events[:200]


def test_amazon_folder_loads_every_file() -> None:
    replay = load_amazon2018(need(AMAZON))
    check_replay(replay)
    assert sum(e.topic == PURCHASES for e in replay.events) == 5269 + 3176 + 2277


# --- atomic (UniSRec / RecBole) -------------------------------------------------------------


@pytest.fixture(scope="module")
def scientific() -> Any:
    return load_atomic(need(SCIENTIFIC))


def test_atomic_dataset_matches_the_readme(scientific: Any) -> None:
    ds = scientific
    assert ds.name == "Scientific"
    assert len(ds.user_ids) == len(ds.test) == 8442 and len(ds.item_ids) == 4385
    assert len(ds.item_text) == 4385
    for user in ds.user_ids:
        assert ds.valid[user][:-1] == ds.train[user] and ds.test[user][:-1] == ds.valid[user]
    assert {i for seq in ds.test.values() for i in seq} == set(ds.item_ids)
    assert load_atomic(SCIENTIFIC / "Scientific").test == ds.test


def test_atomic_replay_keeps_each_sequence_in_order(scientific: Any) -> None:
    replay = atomic_replay(scientific)
    check_replay(replay)
    assert len(replay.items) == 4385 and replay.users == []
    assert len(replay.events) == sum(len(seq) for seq in scientific.test.values())
    seen: dict[str, list[str]] = defaultdict(list)
    for event in replay.events:
        seen[event.key].append(event.value["item_id"])
    assert seen == scientific.test
    few = atomic_replay(scientific, limit_users=10)
    assert len({e.key for e in few.events}) == 10


def test_atomic_item_text_split() -> None:
    text = "Gorilla Glue, 8 ounce. Industrial & Scientific Tapes Urethane Adhesives. Gorilla. "
    assert split_item_text(text) == (
        "Gorilla Glue, 8 ounce",
        "Industrial & Scientific Tapes Urethane Adhesives. Gorilla.",
        ["Gorilla"],
    )
    assert split_item_text("WD-40 Spray, 12 oz. (Pack of 1). . WD-40. ")[0] == (
        "WD-40 Spray, 12 oz. (Pack of 1)"
    )
    assert split_item_text("no split here") == ("no split here", "no split here", [])


# --- registry -------------------------------------------------------------------------------


def test_registry_picks_the_loader() -> None:
    assert sum(e.topic == COMMENTS for e in load_replay(need(BEAUTY)).events) == 5269
    assert len(load_replay(AMAZON).items) == 85 + 31 + 48
    assert len(load_replay(need(SCIENTIFIC)).items) == 4385


def test_registry_rejects_what_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "Beauty.txt").write_text("1 2 3\n")
    for bad in (tmp_path, tmp_path / "missing", tmp_path / "Beauty.txt"):
        with pytest.raises(ValueError, match="cannot tell|does not exist"):
            load_replay(bad)
