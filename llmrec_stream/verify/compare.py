"""The live state against the expectations: counters, watermarks, spend, attributes, the
recent and bought items, and (with an encoder) the decayed vectors (numpy reference of the
Lua maths)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis

from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.events.models import Comment, Purchase
from llmrec_stream.profiles.fusion import (
    MAX_ATTRIBUTES,
    FusionWeights,
    event_kind,
    reference_profile,
)
from llmrec_stream.profiles.store import (
    VectorState,
    bought_key,
    decode_recent,
    decode_vector_state,
    profile_key,
    vectors_key,
)
from llmrec_stream.retrieval.catalog import VECTORS
from llmrec_stream.verify.expected import Expected, expected_attributes, expected_recent


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
