"""Every profile key of a Redis, read so that two runs can be compared key by key.

Vector strings are split into the vectors (compared within int16 rounding: each write rounds a
component by max|v| / 65534, and two runs write at other batch boundaries) and the recent
items (compared exactly, order included). Not DUMP: a hash's serialisation order follows its
dict's history, so equal contents can dump differently.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import redis

from llmrec_stream.profiles.store import decode_recent, decode_vector_state


def profile_snapshot(client: redis.Redis, dim: int) -> dict[bytes, Any]:
    """Every ``u:*`` key but the recommendation cache (its records carry publish times)."""
    out: dict[bytes, Any] = {}
    for key in sorted(client.scan_iter(match="u:*")):
        if key.endswith(b":recs"):
            continue
        kind = client.type(key)
        if kind == b"hash":
            out[key] = client.hgetall(key)
        elif kind == b"zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"string":
            raw: Any = client.get(key)
            out[key] = (decode_vector_state(raw, dim), decode_recent(raw, dim))
        else:  # the recent LIST of earlier versions
            out[key] = client.lrange(key, 0, -1)
    return out


def profile_bytes(client: redis.Redis, *, leave_out: str | None = None) -> dict[bytes, object]:
    """Every profile key's exact bytes: hash fields, list entries, sorted-set members + scores,
    the vector string; not the recommendation cache (its records carry publish times), nor the
    keys that name ``leave_out``. For runs that must agree to the byte (a replay of the same
    log), where `profile_snapshot` allows for other batch boundaries."""
    state: dict[bytes, object] = {}
    keys = (k for k in client.scan_iter(match="u:*")
            if leave_out is None or leave_out.encode() not in k)
    for key in sorted(k for k in keys if not k.endswith(b":recs")):
        kind = client.type(key)
        if kind == b"hash":
            state[key] = client.hgetall(key)
        elif kind == b"list":
            state[key] = client.lrange(key, 0, -1)
        elif kind == b"string":  # the vector state
            state[key] = client.get(key)
        else:
            state[key] = client.zrange(key, 0, -1, withscores=True)
    return state


def differences(a: dict[bytes, Any], b: dict[bytes, Any], steps: int = 40) -> list[str]:
    """What differs between two snapshots; vectors within ``steps`` int16 half-steps."""
    diffs = [f"{k!r} only in one run" for k in sorted(set(a) ^ set(b))]
    for key in sorted(set(a) & set(b)):
        x, y = a[key], b[key]
        if key.endswith(b":v"):
            (vx, rx), (vy, ry) = x, y
            if rx != ry:
                diffs.append(f"{key!r} recent {[r.item_id for r in rx][:8]} != "
                             f"{[r.item_id for r in ry][:8]}")
            if vx.t_ref != vy.t_ref or not (np.isclose(vx.w_text, vy.w_text)
                                            and np.isclose(vx.w_behaviour, vy.w_behaviour)):
                diffs.append(f"{key!r} vector header differs")
            for u, v in ((vx.text, vy.text), (vx.behaviour, vy.behaviour)):
                if not np.allclose(u, v, atol=steps * float(np.abs(v).max()) / 65534 + 1e-6):
                    diffs.append(f"{key!r} vectors differ by {np.abs(u - v).max():.2e}")
        elif x != y:
            diffs.append(f"{key!r}: {x!r} != {y!r}"[:300])
    return diffs


def users_with_other_recent(a: dict[bytes, Any], b: dict[bytes, Any]) -> set[bytes]:
    """Users whose recent items differ (either layout: the LIST or the vector string)."""
    out: set[bytes] = set()
    for key in set(a) | set(b):
        user = key.split(b"}")[0]
        if key.endswith(b":recent") and a.get(key) != b.get(key):
            out.add(user)
        elif key.endswith(b":v"):
            ra = a[key][1] if key in a else None
            rb = b[key][1] if key in b else None
            if ra != rb:
                out.add(user)
    return out
