"""Profile maths: what each event contributes, how contributions decay, how vectors fuse.

The Lua script applies these contributions inside Redis; ``reference_profile`` is the same
maths in numpy, used by tests and by the replay verifier to check what Redis holds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

# the weights are the settings' ``fusion`` section itself (one definition, one set of defaults);
# imported here too, where the maths that reads them lives
from llmrec_stream.config import FusionWeights as FusionWeights
from llmrec_stream.config import ProfileSettings
from llmrec_stream.events.models import Click, Comment, Purchase, UserAttributes, UserEvent

Vector = npt.NDArray[np.float32]

#: Redis keeps profile vectors as int16 codes of max|v| / 32767: rounding moves a component
#: by at most max|v| / HALF_STEPS.
HALF_STEPS = 2 * 32767

#: Attribute keys one profile holds at most by default (``LLMREC_MAX_ATTRIBUTES``): the three
#: categorical fields and three numeric ones. A realistic profile (384-d vectors, 50 recent
#: and 20 bought items, a top-20 cache) leaves ~220 bytes of the 4 KB per user to attributes;
#: six keys of at most MAX_ATTRIBUTE_FIELD_BYTES fit (tests/integration/test_attributes.py).
#: The number is the ``profiles`` section's default, read from it: one definition.
MAX_ATTRIBUTES: int = ProfileSettings().max_attributes

#: Longest stored field ("a:" + name, UTF-8 bytes); a longer one is dropped and counted. Well
#: inside the 64 bytes up to which Redis keeps a hash compact (ziplist or listpack).
MAX_ATTRIBUTE_FIELD_BYTES = 32

#: What an attribute event says when it does not know a categorical field (also what the codec
#: fills in for a field the event leaves out): it never overwrites a known value.
UNKNOWN = "unknown"


def rating_scale(rating: int | None) -> float:
    """Sign and scale of a reviewed item's contribution: 1★ → -1, 3★ → 0, 5★ → +1.

    A comment that names an item but gives no rating counts as mild interest (+0.5).
    """
    if rating is None:
        return 0.5
    return (rating - 3) / 2.0


def event_kind(event: UserEvent) -> str:
    """The one-letter kind the Lua script counts by."""
    if isinstance(event, Comment):
        return "c"
    if isinstance(event, Click):
        return "k"
    if isinstance(event, Purchase):
        return "p"
    return "u"


def behaviour_weight(event: UserEvent, weights: FusionWeights) -> float:
    """Weight of the event's item vector in the behaviour vector (0 when it has none)."""
    if isinstance(event, Click):
        return weights.click
    if isinstance(event, Purchase):
        return weights.purchase
    if isinstance(event, Comment) and event.item_id is not None:
        return weights.review * rating_scale(event.rating)
    return 0.0


def contribution(
    event: UserEvent, text_vec: Vector | None, item_vec: Vector | None, weights: FusionWeights
) -> tuple[Vector | None, Vector | None]:
    """What an event adds to the (text, behaviour) vectors before decay; None adds nothing."""
    tc = None if text_vec is None else (weights.comment_text * text_vec).astype(np.float32)
    bw = behaviour_weight(event, weights)
    bc = None if item_vec is None or bw == 0 else (bw * item_vec).astype(np.float32)
    return tc, bc


def decay(dt_ms: float, half_life_s: float) -> float:
    return math.exp(-math.log(2) * dt_ms / (half_life_s * 1000.0))


def normalize(v: Vector) -> Vector:
    # float64: squares of a long-decayed float32 profile would underflow to zero
    v64 = v.astype(np.float64)
    norm = float(np.linalg.norm(v64))
    return (v64 / norm).astype(np.float32) if norm > 0 else v


def fuse(text_vec: Vector, beh_vec: Vector, mix_text: float) -> Vector:
    """The query vector: a mix of the unit text and behaviour directions.

    A side with no signal yet (zero vector) gives its share to the other, so a user who only
    wrote comments, or only clicked, still gets a full-strength query.
    """
    t, b = normalize(text_vec), normalize(beh_vec)
    has_t, has_b = bool(np.any(t)), bool(np.any(b))
    if has_t and has_b:
        return normalize((mix_text * t + (1.0 - mix_text) * b).astype(np.float32))
    return t if has_t else b


@dataclass(slots=True)
class ReferenceProfile:
    """A profile computed in numpy from events alone (float64), to check Redis against."""

    text: npt.NDArray[np.float64]
    behaviour: npt.NDArray[np.float64]
    t_ref: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    spend: float = 0.0
    attributes: dict[str, str] = field(default_factory=dict)
    text_error_bound: float = 0.0
    behaviour_error_bound: float = 0.0
    """How far Redis's int16 vectors may be from these sums, per component. Each write
    rounds by at most half a step, max|v| / 65534; the script writes once per micro-batch,
    after one of its events; so the sum over events of max|v| / 65534 bounds the error
    however the events were batched (later decay only shrinks earlier errors)."""


def reference_profile(
    events: Iterable[tuple[UserEvent, Vector | None, Vector | None]],
    dim: int,
    weights: FusionWeights,
    max_attributes: int = MAX_ATTRIBUTES,
) -> ReferenceProfile:
    """Apply ``(event, text vector, item vector)`` triples in order, as the Lua script does."""
    prof = ReferenceProfile(np.zeros(dim), np.zeros(dim))
    for event, text_vec, item_vec in events:
        kind = event_kind(event)
        prof.counts[kind] = prof.counts.get(kind, 0) + 1
        tc, bc = contribution(event, text_vec, item_vec, weights)
        if tc is not None or bc is not None:
            f = 1.0
            if prof.t_ref is None:
                prof.t_ref = event.ts
            elif event.ts > prof.t_ref:
                d = decay(event.ts - prof.t_ref, weights.half_life_s)
                prof.text *= d
                prof.behaviour *= d
                prof.t_ref = event.ts
            else:
                f = decay(prof.t_ref - event.ts, weights.half_life_s)
            if tc is not None:
                prof.text += f * tc
            if bc is not None:
                prof.behaviour += f * bc
            prof.text_error_bound += float(np.abs(prof.text).max()) / HALF_STEPS
            prof.behaviour_error_bound += float(np.abs(prof.behaviour).max()) / HALF_STEPS
        if isinstance(event, Purchase):
            prof.spend += event.amount
        if isinstance(event, UserAttributes):
            merge_attributes(prof.attributes, attribute_fields(event), max_attributes)
    return prof


def attribute_fields(event: UserAttributes) -> dict[str, str]:
    """The attributes an update carries, as flat string fields (as stored in Redis).

    A categorical field that is "unknown" (or absent from the event, which the codec decodes
    to "unknown") is left out: an update only changes what it knows, field by field.
    """
    out = {
        k: v
        for k, v in (
            ("age_band", event.age_band),
            ("gender", event.gender),
            ("spend_level", event.spend_level),
        )
        if v != UNKNOWN
    }
    out.update({f"num.{k}": repr(float(v)) for k, v in sorted(event.numeric.items())})
    return out


def merge_attributes(stored: dict[str, str], update: dict[str, str], max_attributes: int) -> int:
    """Merge an update into a profile's attributes as the Lua script does; returns the drops.

    Field by field: a name the update lacks keeps its value, a known name takes the new one.
    A new name enters, in name order, while the profile holds fewer than ``max_attributes``;
    beyond that, and for a name too long for a compact hash, it is dropped and counted, so
    a stream of ever-new names cannot grow a profile without bound.
    """
    dropped = 0
    for name in sorted(update):
        if len(f"a:{name}".encode()) > MAX_ATTRIBUTE_FIELD_BYTES:
            dropped += 1
        elif name in stored or len(stored) < max_attributes:
            stored[name] = update[name]
        else:
            dropped += 1
    return dropped
