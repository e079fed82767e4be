"""A deterministic synthetic world with known ground truth, for tests, demos and benchmarks.

Real data sets tell us nothing about *why* a user likes an item. Here every user has a latent
primary (and often a secondary) category, and their comments, clicks and purchases follow it,
so tests can check that profiles and recommendations recover the taste. The same seed always
gives byte-identical output: only a seeded ``random.Random`` drives it and no wall clock is read.

``lang="zh"`` writes the same world in Chinese (`vocabulary_zh`); ``lang="mixed"`` keeps half
of each category's items English and has users comment in Chinese, naming English brands as
Chinese shoppers do: the cross-language case a multilingual encoder must handle.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import accumulate

from llmrec_stream.events.topics import CLICKS, COMMENTS, ITEMS, PURCHASES, USERS
from llmrec_stream.sources.base import OutboundEvent, Replay, envelope
from llmrec_stream.sources.vocabulary import CATEGORIES
from llmrec_stream.sources.writing import VOCAB, VOCAB_ZH, Listing, make_items, review, review_zh

#: Fixed default start (2023-11-14T22:13:20Z) so output never depends on when it runs.
DEFAULT_START_TS_MS = 1_700_000_000_000
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
GENDERS = ("f", "m", "x")
SPEND_LEVELS = ("low", "mid", "high")
#: Languages of the world: all English, all Chinese, or English and Chinese items with
#: Chinese comments.
LANGS = ("en", "zh", "mixed")
#: Share of each event kind that goes to the primary and secondary category; the rest explores.
#: People write reviews mostly about what they care about, and browse more widely than they buy.
_AFFINITY = {COMMENTS: (0.85, 0.10), CLICKS: (0.65, 0.20), PURCHASES: (0.75, 0.20)}


@dataclass(slots=True)
class SyntheticReplay(Replay):
    """A replay plus the ground truth that generated it."""

    item_category: dict[str, str]
    user_taste: dict[str, str]
    categories: list[str]
    user_secondary: dict[str, str] = field(default_factory=dict)
    item_lang: dict[str, str] = field(default_factory=dict)


def comment_text_for(
    category: str, rng: random.Random, positive: bool = True, lang: str = "en"
) -> str:
    """Write a review about ``category`` (a name from ``categories``) with its words, in
    English (``lang="en"``) or Chinese (``"zh"``).

    Tests use this to send a comment whose topic they know in advance.
    """
    if lang == "zh":
        zh = VOCAB_ZH[category]
        return review_zh(zh, rng, positive, rng.choice(zh.nouns), rng.choice(zh.brands))
    vocab = VOCAB[category]
    return review(vocab, rng, positive, rng.choice(vocab.nouns), rng.choice(vocab.brands))


def synthetic_replay(
    n_items: int = 300,
    n_users: int = 200,
    n_events: int = 5000,
    seed: int = 7,
    start_ts_ms: int | None = None,
    mix: tuple[float, float, float] = (0.3, 0.5, 0.2),
    mean_gap_ms: float = 1000.0,
    lang: str = "en",
) -> SyntheticReplay:
    """Generate a catalog, user attributes and a time-ordered stream of user events.

    ``mix`` gives the shares of comments, clicks and purchases; ``mean_gap_ms`` the mean of the
    exponential gaps between consecutive events. Users act mostly in their primary category
    (85 % of comments, 75 % of purchases, 65 % of clicks), then in their secondary one, and
    explore at random otherwise; users without a secondary category use the primary instead.
    ``lang`` is one of `LANGS` (see the module docstring); "en" output does not depend on it.
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    if n_items < len(CATEGORIES):
        raise ValueError(f"n_items must be at least {len(CATEGORIES)}, one per category")
    if n_users < 1 or n_events < 0 or mean_gap_ms < 0:
        raise ValueError("n_users must be >= 1, n_events and mean_gap_ms >= 0")
    if len(mix) != 3 or min(mix) < 0 or sum(mix) <= 0:
        raise ValueError(f"mix must be three non-negative shares with a positive sum, got {mix}")
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    start = DEFAULT_START_TS_MS if start_ts_ms is None else start_ts_ms
    prefix = f"syn{seed}"
    items, by_category = make_items(n_items, rng, lang)
    item_events = [_item_event(item, prefix, start) for item in items]

    names = [vocab.name for vocab in CATEGORIES]
    taste: dict[str, str] = {}
    secondary: dict[str, str] = {}
    user_events: list[OutboundEvent] = []
    for u in range(n_users):
        user_id = f"user-{u:06d}"
        taste[user_id] = rng.choice(names)
        if rng.random() < 0.6:
            secondary[user_id] = rng.choice([n for n in names if n != taste[user_id]])
        user_events.append(_user_event(user_id, prefix, start, rng))

    popularity = {
        name: list(accumulate(1.0 / (rank + 1) ** 0.8 for rank in range(len(pool))))
        for name, pool in by_category.items()
    }
    user_ids = list(taste)
    activity = list(accumulate(rng.lognormvariate(0.0, 0.6) for _ in user_ids))
    actors = rng.choices(user_ids, cum_weights=activity, k=n_events)
    kinds = rng.choices((COMMENTS, CLICKS, PURCHASES), weights=mix, k=n_events)
    rate = 1.0 / mean_gap_ms if mean_gap_ms > 0 else 0.0
    ts = start
    events: list[OutboundEvent] = []
    for n, (user_id, topic) in enumerate(zip(actors, kinds, strict=True)):
        ts += int(rng.expovariate(rate)) if rate else 0
        primary = taste[user_id]
        roll = rng.random()
        to_primary, to_secondary = _AFFINITY[topic]
        if roll < to_primary:
            category = primary
        elif roll < to_primary + to_secondary:
            category = secondary.get(user_id, primary)
        else:
            category = rng.choice(names)
        pool = by_category[category]
        item = rng.choices(pool, cum_weights=popularity[category])[0]
        value = envelope(f"{prefix}:e{n:08d}", ts)
        value["user_id"] = user_id
        if topic == COMMENTS:
            liked = category in (primary, secondary.get(user_id))
            positive = rng.random() < (0.9 if liked else 0.3)
            if lang == "en":
                value["text"] = review(item.vocab, rng, positive, item.noun, item.brand)
            else:
                zh = VOCAB_ZH[item.vocab.name]
                noun = item.noun if item.lang == "zh" else rng.choice(zh.nouns)
                value["text"] = review_zh(zh, rng, positive, noun, item.brand)
            if rng.random() < 0.85:
                value["item_id"] = item.item_id
            if rng.random() < 0.9:
                value["rating"] = rng.choice((4, 5, 5)) if positive else rng.choice((1, 2))
        else:
            value["item_id"] = item.item_id
            if topic == PURCHASES:
                quantity = rng.choices((1, 2, 3), weights=(75, 18, 7))[0]
                value["amount"] = round(item.price * quantity, 2)
                value["quantity"] = quantity
        events.append(OutboundEvent(topic, user_id, value))

    return SyntheticReplay(
        items=item_events,
        users=user_events,
        events=events,
        item_category={item.item_id: item.vocab.name for item in items},
        user_taste=taste,
        categories=names,
        user_secondary=secondary,
        item_lang={item.item_id: item.lang for item in items},
    )



def _item_event(item: Listing, prefix: str, ts: int) -> OutboundEvent:
    value = envelope(f"{prefix}:{item.item_id}", ts)
    value.update(
        item_id=item.item_id,
        title=item.title,
        description=item.description,
        tags=item.tags,
        category=item.vocab.name,
    )
    return OutboundEvent(ITEMS, item.item_id, value)


def _user_event(user_id: str, prefix: str, ts: int, rng: random.Random) -> OutboundEvent:
    value = envelope(f"{prefix}:{user_id}", ts)
    value.update(
        user_id=user_id,
        age_band=rng.choice(AGE_BANDS),
        gender=rng.choice(GENDERS),
        spend_level=rng.choice(SPEND_LEVELS),
        numeric={"tenure_days": float(rng.randint(1, 3650))},
    )
    return OutboundEvent(USERS, user_id, value)
