"""The recommendation cache's bytes: a user's latest top-k, kept in Redis for pull.

The full record goes out on ``llmrec.recommendations``; the cache keeps what a pull needs
(items, scores, model version, trigger and publish times) in a binary layout about half the
size of the JSON, because it is one of the few things Redis holds per user (the target is
4 KB per user in all). Layout, little endian::

    u8 format (1) | i64 trigger_ts | i64 published_ts | u16 len + model version (UTF-8)
    | u16 n | n × f32 score | n × (u16 len + item id (UTF-8))

Scores are float32: what a pull returns agrees with the published record to about seven
significant digits.
"""

from __future__ import annotations

import json
import struct
from typing import Any

FORMAT = 1
_HEAD = struct.Struct("<BqqH")


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
    ]
    for item in items:
        raw = item.encode("utf-8")
        parts += [struct.pack("<H", len(raw)), raw]
    return b"".join(parts)


def decode(user_id: str, blob: bytes) -> dict[str, Any]:
    """What a pull returns: the published record's fields, less the driving event ids."""
    fmt, trigger_ts, published_ts, vlen = _HEAD.unpack_from(blob)
    if fmt != FORMAT:
        raise ValueError(f"unknown recommendation cache format {fmt}")
    at = _HEAD.size
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
        "user_id": user_id,
        "items": items,
        "scores": [round(s, 6) for s in scores],
        "model_version": version,
        "trigger_ts": trigger_ts,
        "published_ts": published_ts,
    }
