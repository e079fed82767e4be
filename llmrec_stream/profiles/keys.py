"""The Redis keys of one user, and the codes of the topics their recent entries carry.

Every key of a user carries the hash tag ``{user_id}``, so one Lua call or MULTI over them
touches one slot (Redis Cluster). The profile script (`store`), erasure, the shadow counters
and the pull API all name keys here.
"""

from __future__ import annotations

from llmrec_stream.events import topics

#: Codes of the user-event topics in name order: recent items with equal times are ordered
#: by (topic, partition, offset), as the trainer orders them. 0 marks items moved over from
#: the LIST layout of earlier versions.
TOPIC_CODES = {t: n for n, t in enumerate(sorted(topics.USER_EVENT_TOPICS), start=1)}


def topic_code(topic: str) -> int:
    """The code a recent entry of this topic carries (`TOPIC_CODES`)."""
    code = TOPIC_CODES.get(topic)
    if code is None:
        raise ValueError(f"{topic!r} is not a user-event topic")
    return code


def profile_key(user_id: str) -> str:
    return f"u:{{{user_id}}}:p"


def recent_key(user_id: str) -> str:
    return f"u:{{{user_id}}}:recent"


def bought_key(user_id: str) -> str:
    return f"u:{{{user_id}}}:bought"


def vectors_key(user_id: str) -> str:
    return f"u:{{{user_id}}}:v"


def recs_key(user_id: str) -> str:
    return f"u:{{{user_id}}}:recs"


def follows_key(user_id: str) -> str:
    """The users this user follows (a sorted set: followee -> follow ts; social signals).

    Only users who follow someone have it, so it is not among `user_keys` (the keys every
    profile holds, what the per-user memory budget counts); erasure deletes it too.
    """
    return f"u:{{{user_id}}}:f"


def shadow_key(user_id: str) -> str:
    """Each model's previous top-k for this user while a model runs in shadow
    (`llmrec_stream.ranking.shadow`); it expires, and erasure deletes it too."""
    return f"u:{{{user_id}}}:sh"


def user_keys(user_id: str) -> list[str]:
    """Every key that holds something of this user."""
    return [
        profile_key(user_id),
        recent_key(user_id),
        bought_key(user_id),
        vectors_key(user_id),
        recs_key(user_id),
    ]
