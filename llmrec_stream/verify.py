"""The replay verifier: what Redis must hold, computed from the input events alone.

Kafka is the source of truth. Given every record as the broker stored it (value, partition,
offset), the verifier validates it with the same codec, then derives each user's expected
counters, spend, attributes, bought and recent items (in event-time order), offset
watermarks and decayed vectors (numpy reference of the Lua maths), and the (user, event) pairs
that must have driven a published recommendation. Fault tests and the soak command compare the
live state with it: a lost update or one applied twice shows up as a counter or a watermark
that differs; a recent list in consumption order rather than event time shows up too.

An erasure (``llmrec.users.erase``) removes every event of the user up to its time, as the
profile script refuses them. Limit: an event whose time is after the erasure's but that the
worker applied before it is erased with the rest; the verifier expects it kept, so a test
that erases must produce later events after the erasure was processed.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis

from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.events import topics
from llmrec_stream.events.codec import Limits, Rejected, decode
from llmrec_stream.events.models import (
    Campaign,
    Comment,
    Erasure,
    Item,
    Purchase,
    Source,
    UserAttributes,
    UserEvent,
)
from llmrec_stream.kafka_log import read_records
from llmrec_stream.profiles.fusion import (
    MAX_ATTRIBUTES,
    FusionWeights,
    attribute_fields,
    event_kind,
    merge_attributes,
    reference_profile,
)
from llmrec_stream.profiles.store import (
    RecentEntry,
    VectorState,
    bought_key,
    decode_recent,
    decode_vector_state,
    profile_key,
    topic_code,
    vectors_key,
)
from llmrec_stream.replay import Delivered
from llmrec_stream.retrieval.catalog import VECTORS
from llmrec_stream.sources.base import OutboundEvent


@dataclass(slots=True)
class Expected:
    """One user's profile as the input events define it."""

    events: list[tuple[UserEvent, Source]] = field(default_factory=list)
    watermarks: dict[str, int] = field(default_factory=dict)
    erased_at: int | None = None
    """The time of the user's latest erasure: events up to it are refused (not in ``events``)."""

    def counts(self) -> dict[str, int]:
        kinds = Counter(event_kind(e) for e, _ in self.events)
        return dict(kinds)


def expected_profiles(
    records: Iterable[Delivered], known_items: set[str], limits: Limits | None = None
) -> tuple[dict[str, Expected], Counter[str]]:
    """Per-user expectations, and the dead letters (by reason) the input must have caused."""
    limits = limits or Limits(max_future_skew_s=10 * 365 * 86400)
    users: dict[str, Expected] = defaultdict(Expected)
    rejected: Counter[str] = Counter()
    records = list(records)
    erased_at: dict[str, int] = {}
    for rec in records:
        if rec.event.topic == topics.ERASE:
            key, value = rec.event.encode()
            src = Source(rec.event.topic, rec.partition, rec.offset)
            erasure = decode(src.topic, key, value, src, limits)
            if isinstance(erasure, Rejected):
                rejected[erasure.reason] += 1
            elif isinstance(erasure.event, Erasure):
                user = erasure.event.user_id
                erased_at[user] = max(erasure.event.ts, erased_at.get(user, erasure.event.ts))
    for rec in sorted(records, key=lambda r: (r.event.topic, r.partition, r.offset)):
        if rec.event.topic not in topics.USER_EVENT_TOPICS:
            continue
        key, value = rec.event.encode()
        src = Source(rec.event.topic, rec.partition, rec.offset)
        result = decode(src.topic, key, value, src, limits)
        if isinstance(result, Rejected):
            rejected[result.reason] += 1
            continue
        event = result.event
        assert not isinstance(event, Item | Erasure | Campaign)  # noqa: S101 - not read
        item = getattr(event, "item_id", None)
        if item is not None and item not in known_items:
            rejected["unknown_item"] += 1
            continue
        exp = users[event.user_id]
        exp.watermarks[f"{src.topic}:{src.partition}"] = src.offset
        exp.erased_at = erased_at.get(event.user_id)
        if exp.erased_at is None or event.ts > exp.erased_at:
            exp.events.append((event, src))
    return dict(users), rejected


def expected_recent(exp: Expected, recent_items: int) -> list[RecentEntry]:
    """The recent list the profile must hold: newest first by (ts, topic, partition, offset)."""
    entries = [
        RecentEntry(e.ts, topic_code(src.topic), src.partition, src.offset, item)
        for e, src in exp.events
        if (item := getattr(e, "item_id", None)) is not None
    ]
    return sorted(entries, key=lambda r: r.order, reverse=True)[:recent_items]


def expected_attributes(exp: Expected, max_attributes: int = MAX_ATTRIBUTES) -> dict[str, str]:
    """The attribute fields, merged field by field in log order with the per-user bound."""
    attrs: dict[str, str] = {}
    for e, _ in exp.events:
        if isinstance(e, UserAttributes):
            merge_attributes(attrs, attribute_fields(e), max_attributes)
    return attrs


def read_log(bootstrap: str, topic_names: Sequence[str], partitions: int) -> list[Delivered]:
    """Every record of these topics, from offset 0 to the current end: the source of truth.

    Reading the log (rather than trusting delivery reports) also counts the duplicates a
    producer's retries may have written, which the pipeline must then apply too.
    """
    return [
        Delivered(
            OutboundEvent(r.topic, r.key.decode("utf-8", "replace") if r.key else "",
                          json.loads(r.value) if r.value else {}),
            r.partition,
            r.offset,
        )
        for r in read_records(bootstrap, topic_names, partitions=partitions,
                              group_id="llmrec-verifier")
    ]


def item_vectors(client: redis.Redis) -> dict[str, np.ndarray]:
    raw: dict[bytes, bytes] = client.hgetall(VECTORS)  # type: ignore[assignment]
    return {k.decode(): np.frombuffer(v, dtype="<f4") for k, v in raw.items()}


@dataclass(slots=True)
class Report:
    users: int = 0
    mismatches: list[str] = field(default_factory=list)
    lost: int = 0
    duplicated: int = 0

    @property
    def ok(self) -> bool:
        return not self.mismatches


def compare(
    client: redis.Redis,
    expected: dict[str, Expected],
    weights: FusionWeights,
    *,
    encoder: TextEncoder | None = None,
    recent_items: int = 50,
    atol: float = 2e-4,
    vector_users: int | None = None,
    max_attributes: int = MAX_ATTRIBUTES,
    dim: int | None = None,
) -> Report:
    """Compare Redis with the expectations; with an encoder the vectors are checked too.

    Counters, watermarks, attributes and item lists (the recent list in order) are checked
    for every user; the vectors (which need every comment re-encoded) for all users, or for
    the first ``vector_users`` in id order. ``dim`` (the vectors' dimension, to find the
    recent items behind them) defaults to the encoder's, else to the catalog's.
    """
    items = item_vectors(client)
    if dim is None:
        dim = encoder.dim if encoder is not None else len(next(iter(items.values()), []))
    texts: dict[str, np.ndarray] = {}
    with_vectors = set(sorted(expected)[:vector_users] if vector_users else expected)
    if encoder is not None:
        comments = [
            e for user in with_vectors for e, _ in expected[user].events if isinstance(e, Comment)
        ]
        if comments:
            vecs = encoder.encode([c.text for c in comments])
            texts = {c.event_id: v for c, v in zip(comments, vecs, strict=True)}
    report = Report(users=len(expected))
    for user, exp in expected.items():
        got: dict[bytes, bytes] = client.hgetall(profile_key(user))  # type: ignore[assignment]
        raw: Any = client.get(vectors_key(user)) or b""
        bad = _compare_user(client, user, exp, got, raw, dim, recent_items, max_attributes,
                            report)
        if encoder is not None and not bad and user in with_vectors:
            state = decode_vector_state(raw, encoder.dim)
            bad = _compare_vectors(exp, state, items, texts, weights, encoder.dim, atol)
        if bad:
            report.mismatches.append(f"{user}: {bad}")
    return report


def _compare_user(
    client: redis.Redis,
    user: str,
    exp: Expected,
    got: dict[bytes, bytes],
    state: bytes,
    dim: int,
    recent_items: int,
    max_attributes: int,
    report: Report,
) -> str:
    for kind, n in exp.counts().items():
        have = int(got.get(f"n:{kind}".encode(), 0))
        report.lost += max(0, n - have)
        report.duplicated += max(0, have - n)
        if have != n:
            return f"n:{kind} is {have}, expected {n}"
    for wm, offset in exp.watermarks.items():
        if int(got.get(f"wm:{wm}".encode(), -1)) != offset:
            return f"watermark {wm} is {got.get(f'wm:{wm}'.encode())!r}, expected {offset}"
    spend = sum(getattr(e, "amount", 0.0) for e, _ in exp.events if event_kind(e) == "p")
    if abs(float(got.get(b"spend", 0)) - spend) > 1e-6 * max(1.0, spend):
        return f"spend is {got.get(b'spend')!r}, expected {spend}"
    attrs = expected_attributes(exp, max_attributes)
    have_attrs = {k.decode()[2:]: v.decode() for k, v in got.items() if k.startswith(b"a:")}
    if have_attrs != attrs:
        wrong = sorted(set(have_attrs.items()) ^ set(attrs.items()))[:3]
        return f"attributes differ: {wrong} ({len(have_attrs)} held, {len(attrs)} expected)"
    recent = decode_recent(state, dim)
    want_recent = expected_recent(exp, recent_items)
    if recent != want_recent:
        i = next(
            (n for n, (a, b) in enumerate(zip(recent, want_recent, strict=False)) if a != b),
            min(len(recent), len(want_recent)),
        )
        return (f"recent items differ from position {i} ({len(recent)} held, "
                f"{len(want_recent)} expected): {[r.item_id for r in recent[i:i + 3]]} != "
                f"{[r.item_id for r in want_recent[i:i + 3]]}")
    raw_bought: list[tuple[bytes, float]] = client.zrange(  # type: ignore[assignment]
        bought_key(user), 0, -1, withscores=True
    )
    bought = {b.decode(): int(ts) for b, ts in raw_bought}
    want: dict[str, int] = {}  # item -> its newest purchase, whatever order they came in
    for e, _ in exp.events:
        if isinstance(e, Purchase):
            want[e.item_id] = max(e.ts, want.get(e.item_id, e.ts))
    if len(want) <= 500 and bought != want:
        wrong_bought = sorted(set(bought.items()) ^ set(want.items()))[:3]
        return f"bought items differ: {wrong_bought}"
    return ""


def _compare_vectors(
    exp: Expected,
    got: VectorState,
    items: dict[str, np.ndarray],
    texts: dict[str, np.ndarray],
    weights: FusionWeights,
    dim: int,
    atol: float,
) -> str:
    triples = [
        (
            e,
            texts.get(e.event_id) if isinstance(e, Comment) else None,
            items.get(getattr(e, "item_id", None) or ""),
        )
        for e, _ in exp.events
    ]
    ref = reference_profile(triples, dim, weights)
    for name, have, want, bound in (
        ("text", got.text, ref.text, ref.text_error_bound),
        ("behaviour", got.behaviour, ref.behaviour, ref.behaviour_error_bound),
    ):
        # atol: float rounding; bound: what the int16 storage may round away (fusion.py)
        if not np.allclose(have, want, atol=atol + bound, rtol=1e-3):
            return f"{name} differs by {float(np.max(np.abs(have - want))):.2e}"
    return ""


def missing_recommendations(
    expected: dict[str, Expected], published: Sequence[dict[str, Any]]
) -> list[tuple[str, str]]:
    """(user, event id) pairs that no published recommendation names as a driver."""
    seen = {(r["user_id"], e) for r in published for e in r["event_ids"]}
    return [
        (user, e.event_id)
        for user, exp in expected.items()
        for e, _ in exp.events
        if not isinstance(e, UserAttributes) and (user, e.event_id) not in seen
    ]

