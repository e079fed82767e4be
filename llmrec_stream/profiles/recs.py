"""The recommendation cache's bytes: a user's latest top-k, kept in Redis for pull.

The full record goes out on ``llmrec.recommendations``; the cache keeps what a pull needs
(items, scores, model version, trigger and publish times, reasons, sponsored placements) in a
binary layout well under half the size of the JSON, because it is one of the few things Redis
holds per user (the target is 4 KB per user in all, and a realistic profile is within a few
bytes of it: tests/integration/test_attributes.py). Format 2, varints LEB128, z = zigzag::

    u8 format (2) | varint trigger_ts | z published_ts - trigger_ts | varint len + model version
    | varint n | n × z score step (micro-units: score × 10^6 minus the previous one's)
    | n × (varint len + item id) | varint r | r × reason | ceil(n × b / 8) bytes of b-bit
    reason indexes, b = bit length of r (2^b - 1: none), little endian
    | [varint s | s × (u8 position + varint len + campaign id)]  (absent: no placement)

    reason: u8 kind (1 click, 2 comment, 3 purchase, 4 aspect) × 32 + partition (31: a varint
            follows) | varint offset | varint len + item id (0: none; an aspect: its name)

Scores are published with six decimals; a step in micro-units keeps exactly that (a sorted
top-k takes 2 to 3 bytes a score). Reasons are stored once each and referenced by index, in as
few bits as their count needs (2 for the default 3): one list cites at most 15 distinct events
(``explain_max_events``). Format 1 (no reasons, fixed widths) still decodes.
"""

from __future__ import annotations

import json
import struct
from typing import Any

FORMAT = 2
_V1_HEAD = struct.Struct("<BqqH")
_KINDS = ("click", "comment", "purchase", "aspect")
_TOPICS = {"click": "llmrec.clicks", "comment": "llmrec.comments", "purchase": "llmrec.purchases",
           "aspect": "llmrec.comments"}
MAX_REASONS = 15


def _varint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _zigzag(v: int) -> bytes:
    return _varint(v * 2 if v >= 0 else -v * 2 - 1)


def read_varint(blob: bytes, at: int) -> tuple[int, int]:
    """An unsigned LEB128 integer at ``at``: (value, position after it)."""
    value = shift = 0
    while True:
        byte = blob[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _read_zigzag(blob: bytes, at: int) -> tuple[int, int]:
    v, at = read_varint(blob, at)
    return (v >> 1) if not v & 1 else -((v + 1) >> 1), at


def _text(raw: str) -> bytes:
    data = raw.encode("utf-8")
    return _varint(len(data)) + data


def _read_text(blob: bytes, at: int) -> tuple[str, int]:
    size, at = read_varint(blob, at)
    return blob[at : at + size].decode("utf-8"), at + size


def _reason(reason: dict[str, Any]) -> bytes:
    kind, part = _KINDS.index(reason["kind"]) + 1, reason["partition"]
    head = bytes([kind * 32 + part]) if part < 31 else bytes([kind * 32 + 31]) + _varint(part)
    # an aspect reason cites a comment: its text slot holds the aspect's name, not an item
    name = reason.get("aspect", "") if reason["kind"] == "aspect" else reason.get("item_id", "")
    return head + _varint(reason["offset"]) + _text(name)


def encode(record: bytes) -> bytes:
    """The cache bytes of one published recommendation record (its JSON)."""
    obj = json.loads(record)
    items: list[str] = obj["items"]
    micro = [round(score * 1_000_000) for score in obj["scores"]]
    parts = [
        bytes([FORMAT]), _varint(obj["trigger_ts"]),
        _zigzag(obj["published_ts"] - obj["trigger_ts"]), _text(obj["model_version"]),
        _varint(len(items)),
        *(_zigzag(m - prev) for m, prev in zip(micro, [0, *micro], strict=False)),
        *(_text(item) for item in items),
    ]
    table: dict[str, int] = {}
    rows: list[bytes] = []
    refs: list[int | None] = []
    for reason in obj.get("reasons") or [None] * len(items):
        if reason is None:
            refs.append(None)
            continue
        key = json.dumps(reason, sort_keys=True)
        if key not in table:
            table[key] = len(rows)
            rows.append(_reason(reason))
        refs.append(table[key])
    if len(rows) > MAX_REASONS:
        raise ValueError(f"{len(rows)} distinct reasons: the cache holds {MAX_REASONS} a list")
    bits = len(rows).bit_length()
    none = (1 << bits) - 1
    packed = sum((none if r is None else r) << (bits * i) for i, r in enumerate(refs))
    parts += [_varint(len(rows)), *rows, packed.to_bytes((len(refs) * bits + 7) // 8, "little")]
    placed = [(pos, p) for pos, p in enumerate(obj.get("placements") or []) if p is not None]
    if placed:
        parts.append(_varint(len(placed)))
        parts += [bytes([pos]) + _text(p["campaign_id"]) for pos, p in placed]
    return b"".join(parts)


def decode(user_id: str, blob: bytes) -> dict[str, Any]:
    """What a pull returns: the published record's fields, less the driving event ids."""
    if blob[:1] == b"\x01":
        return _decode_v1(user_id, blob)
    if blob[:1] != bytes([FORMAT]):
        raise ValueError(f"unknown recommendation cache format {blob[0] if blob else None}")
    trigger_ts, at = read_varint(blob, 1)
    delta, at = _read_zigzag(blob, at)
    version, at = _read_text(blob, at)
    n, at = read_varint(blob, at)
    scores: list[float] = []
    micro = 0
    for _ in range(n):
        step, at = _read_zigzag(blob, at)
        micro += step
        scores.append(micro / 1_000_000)
    items: list[str] = []
    for _ in range(n):
        item, at = _read_text(blob, at)
        items.append(item)
    count, at = read_varint(blob, at)
    table: list[dict[str, Any]] = []
    for _ in range(count):
        kind_part = blob[at]
        kind, part = _KINDS[kind_part // 32 - 1], kind_part % 32
        at += 1
        if part == 31:
            part, at = read_varint(blob, at)
        offset, at = read_varint(blob, at)
        item_id, at = _read_text(blob, at)
        reason: dict[str, Any] = {"kind": kind, "topic": _TOPICS[kind], "partition": part,
                                  "offset": offset}
        if item_id:
            reason["aspect" if kind == "aspect" else "item_id"] = item_id
        table.append(reason)
    bits = count.bit_length()
    size = (n * bits + 7) // 8
    packed = int.from_bytes(blob[at : at + size], "little")
    at += size
    none = (1 << bits) - 1
    refs = [(packed >> (bits * i)) & none for i in range(n)]
    placements: list[dict[str, Any] | None] = [None] * n
    count = 0
    if at < len(blob):
        count, at = read_varint(blob, at)
    for _ in range(count):
        pos = blob[at]
        campaign, at = _read_text(blob, at + 1)
        placements[pos] = {"sponsored": True, "campaign_id": campaign}
    return {
        "user_id": user_id, "items": items, "scores": scores, "model_version": version,
        "trigger_ts": trigger_ts, "published_ts": trigger_ts + delta,
        "reasons": [None if i == none else dict(table[i]) for i in refs],
        "placements": placements,
    }


def _decode_v1(user_id: str, blob: bytes) -> dict[str, Any]:
    """Format 1 (before reasons): u8 1 | i64 trigger_ts | i64 published_ts | u16 len +
    version | u16 n | n × f32 score | n × (u16 len + item id)."""
    _, trigger_ts, published_ts, vlen = _V1_HEAD.unpack_from(blob)
    at = _V1_HEAD.size
    version = blob[at : at + vlen].decode("utf-8")
    at += vlen
    (n,) = struct.unpack_from("<H", blob, at)
    scores = struct.unpack_from(f"<{n}f", blob, at + 2)
    at += 2 + 4 * n
    items: list[str] = []
    for _ in range(n):
        (size,) = struct.unpack_from("<H", blob, at)
        items.append(blob[at + 2 : at + 2 + size].decode("utf-8"))
        at += 2 + size
    return {
        "user_id": user_id, "items": items, "scores": [round(s, 6) for s in scores],
        "model_version": version, "trigger_ts": trigger_ts, "published_ts": published_ts,
    }
