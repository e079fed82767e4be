"""The recommendation cache's bytes: a user's latest top-k, kept in Redis for pull.

The full record goes out on ``llmrec.recommendations``; the cache keeps what a pull needs
(items, scores, model version, trigger and publish times, reasons, sponsored placements) in a
binary layout about half the size of the JSON, because it is one of the few things Redis holds
per user (the target is 4 KB per user in all). Layout, little endian, format 2::

    u8 format (2) | i64 trigger_ts | i64 published_ts | u16 len + model version (UTF-8)
    | u16 n | n × f32 score | n × (varint len + item id (UTF-8))
    | varint r | r × reason | n × u8 reason index (255: none)
    | varint s | s × (u8 position + varint len + campaign id)

    reason: u8 kind (1 click, 2 comment, 3 purchase) | varint partition | varint offset
            | varint len + item id (0: none)

Reasons are stored once each and referenced by index: the items of one top-k mostly share a
few events (a user's strongest interests). Format 1 (no reasons, u16 item lengths) still
decodes. Scores are float32: what a pull returns agrees with the published record to about
seven significant digits.
"""

from __future__ import annotations

import json
import struct
from typing import Any

FORMAT = 2
_HEAD = struct.Struct("<BqqH")
_KINDS = ("click", "comment", "purchase")
_TOPICS = {"click": "llmrec.clicks", "comment": "llmrec.comments", "purchase": "llmrec.purchases"}
_NONE = 255


def _varint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _read_varint(blob: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = blob[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _text(raw: str) -> bytes:
    data = raw.encode("utf-8")
    return _varint(len(data)) + data


def _read_text(blob: bytes, at: int) -> tuple[str, int]:
    size, at = _read_varint(blob, at)
    return blob[at : at + size].decode("utf-8"), at + size


def encode(record: bytes) -> bytes:
    """The cache bytes of one published recommendation record (its JSON)."""
    obj = json.loads(record)
    version = obj["model_version"].encode("utf-8")
    items: list[str] = obj["items"]
    scores: list[float] = obj["scores"]
    parts = [
        _HEAD.pack(FORMAT, obj["trigger_ts"], obj["published_ts"], len(version)),
        version,
        struct.pack(f"<H{len(scores)}f", len(scores), *scores),
        *(_text(item) for item in items),
    ]
    table: dict[str, int] = {}
    rows: list[bytes] = []
    refs = bytearray()
    for reason in obj.get("reasons") or [None] * len(items):
        if reason is None:
            refs.append(_NONE)
            continue
        key = json.dumps(reason, sort_keys=True)
        if key not in table:
            table[key] = len(rows)
            rows.append(
                bytes([_KINDS.index(reason["kind"]) + 1])
                + _varint(reason["partition"]) + _varint(reason["offset"])
                + _text(reason.get("item_id", ""))
            )
        refs.append(table[key])
    if len(rows) >= _NONE:
        raise ValueError(f"{len(rows)} distinct reasons do not fit the cache layout")
    placed = [(pos, p) for pos, p in enumerate(obj.get("placements") or []) if p is not None]
    parts += [_varint(len(rows)), *rows, bytes(refs), _varint(len(placed))]
    parts += [bytes([pos]) + _text(p["campaign_id"]) for pos, p in placed]
    return b"".join(parts)


def decode(user_id: str, blob: bytes) -> dict[str, Any]:
    """What a pull returns: the published record's fields, less the driving event ids."""
    fmt, trigger_ts, published_ts, vlen = _HEAD.unpack_from(blob)
    if fmt not in (1, FORMAT):
        raise ValueError(f"unknown recommendation cache format {fmt}")
    at = _HEAD.size
    version = blob[at : at + vlen].decode("utf-8")
    at += vlen
    (n,) = struct.unpack_from("<H", blob, at)
    scores = struct.unpack_from(f"<{n}f", blob, at + 2)
    at += 2 + 4 * n
    items: list[str] = []
    for _ in range(n):
        if fmt == 1:
            (size,) = struct.unpack_from("<H", blob, at)
            items.append(blob[at + 2 : at + 2 + size].decode("utf-8"))
            at += 2 + size
        else:
            item, at = _read_text(blob, at)
            items.append(item)
    out: dict[str, Any] = {
        "user_id": user_id,
        "items": items,
        "scores": [round(s, 6) for s in scores],
        "model_version": version,
        "trigger_ts": trigger_ts,
        "published_ts": published_ts,
    }
    if fmt == 1:
        return out
    count, at = _read_varint(blob, at)
    table: list[dict[str, Any]] = []
    for _ in range(count):
        kind = _KINDS[blob[at] - 1]
        partition, at = _read_varint(blob, at + 1)
        offset, at = _read_varint(blob, at)
        item_id, at = _read_text(blob, at)
        reason: dict[str, Any] = {"kind": kind, "topic": _TOPICS[kind], "partition": partition,
                                  "offset": offset}
        if item_id:
            reason["item_id"] = item_id
        table.append(reason)
    out["reasons"] = [None if i == _NONE else dict(table[i]) for i in blob[at : at + n]]
    at += n
    placements: list[dict[str, Any] | None] = [None] * n
    count, at = _read_varint(blob, at)
    for _ in range(count):
        pos = blob[at]
        campaign, at = _read_text(blob, at + 1)
        placements[pos] = {"sponsored": True, "campaign_id": campaign}
    out["placements"] = placements
    return out
