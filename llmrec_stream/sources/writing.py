"""What the synthetic world writes: listings and reviews from the category vocabularies.

English from `vocabulary`, Chinese from `vocabulary_zh` (titles with a model code, sometimes
a 【tag】 in front, full-width punctuation, as Chinese shops write them). Every word comes from
the item's category, so a test knows the topic of a text in advance; only the ``random.Random``
passed in decides, so the same seed writes the same texts.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from llmrec_stream.sources.vocabulary import (
    CATEGORIES,
    NEGATIVE_OPENERS,
    POSITIVE_OPENERS,
    CategoryVocab,
)
from llmrec_stream.sources.vocabulary_zh import (
    CATEGORIES_ZH,
    NEGATIVE_OPENERS_ZH,
    POSITIVE_OPENERS_ZH,
    CategoryVocabZh,
)

VOCAB = {vocab.name: vocab for vocab in CATEGORIES}
VOCAB_ZH = {vocab.name: vocab for vocab in CATEGORIES_ZH}
_CODE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


@dataclass(frozen=True, slots=True)
class Listing:
    item_id: str
    vocab: CategoryVocab
    noun: str
    brand: str
    price: float
    title: str
    description: str
    tags: list[str]
    lang: str = "en"


def make_items(
    n_items: int, rng: random.Random, lang: str = "en"
) -> tuple[list[Listing], dict[str, list[Listing]]]:
    """Spread items evenly over the categories; titles carry a model code to stay unique.

    In a "mixed" world every other round over the categories is Chinese, so each category
    holds both languages' items.
    """
    items: list[Listing] = []
    by_category: dict[str, list[Listing]] = {vocab.name: [] for vocab in CATEGORIES}
    seen: set[str] = set()
    for i in range(n_items):
        vocab = CATEGORIES[i % len(CATEGORIES)]
        if lang == "zh" or (lang == "mixed" and (i // len(CATEGORIES)) % 2 == 1):
            item = _item_zh(i, vocab, VOCAB_ZH[vocab.name], rng, seen)
            items.append(item)
            by_category[vocab.name].append(item)
            continue
        brand, noun = rng.choice(vocab.brands), rng.choice(vocab.nouns)
        adjective = rng.choice(vocab.adjectives)
        title = ""
        while not title or title in seen:
            code = f"{brand[:2].upper()}-{rng.randint(100, 9999)}"
            title = f"{brand} {_title_case(adjective)} {_title_case(noun)} {code}"
        seen.add(title)
        item = _listing(i, vocab, noun, brand, title, rng,
                        partial(_description, vocab, rng, adjective, noun), vocab.tags)
        items.append(item)
        by_category[vocab.name].append(item)
    return items, by_category


def _item_zh(
    i: int, vocab: CategoryVocab, zh: CategoryVocabZh, rng: random.Random, seen: set[str]
) -> Listing:
    """A Chinese listing: brand, selling point and product, a model code, sometimes a
    【tag】 in front as Chinese shops write them."""
    brand, noun, adjective = rng.choice(zh.brands), rng.choice(zh.nouns), rng.choice(zh.adjectives)
    title = ""
    while not title or title in seen:
        code = f"{rng.choice(_CODE_LETTERS)}{rng.choice(_CODE_LETTERS)}-{rng.randint(100, 9999)}"
        title = f"{brand} {adjective}{noun} {code}"
        if rng.random() < 0.3:
            title = f"【{rng.choice(zh.tags)}】{title}"
    seen.add(title)
    use, other_use = rng.sample(zh.uses, 2)
    second = rng.choice(
        (
            f"也很适合{other_use}。",
            f"{rng.choice(zh.brands)}出品，{other_use}的好帮手。",
            f"专为{other_use}设计，经久耐用。",
        )
    )
    return _listing(
        i, vocab, noun, brand, title, rng,
        lambda: f"{adjective}{noun}，采用{rng.choice(zh.materials)}，适合{use}。{second}",
        zh.tags, lang="zh",
    )


def _listing(
    i: int,
    vocab: CategoryVocab,
    noun: str,
    brand: str,
    title: str,
    rng: random.Random,
    describe: Callable[[], str],
    tags: Sequence[str],
    lang: str = "en",
) -> Listing:
    """The ``i``-th listing: its price, then its description, then three of ``tags``, drawn
    in that order (the order fixes the seed's output)."""
    price = round(rng.uniform(*vocab.price)) - 0.01
    description = describe()
    return Listing(
        item_id=f"item-{i:06d}",
        vocab=vocab,
        noun=noun,
        brand=brand,
        price=price,
        title=title,
        description=description,
        tags=sorted(rng.sample(tags, 3)),
        lang=lang,
    )


def review_zh(
    zh: CategoryVocabZh, rng: random.Random, positive: bool, noun: str, brand: str
) -> str:
    """The Chinese review: opener, what it was bought for, category details, full-width
    punctuation."""
    use = rng.choice(zh.uses)
    if positive:
        praise, more = rng.sample(zh.praise, 2)
        opener = rng.choice(POSITIVE_OPENERS_ZH)
        parts = [f"{opener}！买了这款{noun}用来{use}，{praise}。", f"{more}。"]
        if rng.random() < 0.5:
            parts.append(f"{brand}的{rng.choice(zh.materials)}做工很好。")
    else:
        complaint, more = rng.sample(zh.complaints, 2)
        parts = [f"{rng.choice(NEGATIVE_OPENERS_ZH)}。买了这款{noun}用来{use}，但是{complaint}。"]
        parts.append(f"而且{more}。" if rng.random() < 0.5 else f"对{brand}太失望了。")
    return "".join(parts)


def _description(vocab: CategoryVocab, rng: random.Random, adjective: str, noun: str) -> str:
    """Two catalog sentences built only from the category's own words."""
    use, other_use = rng.sample(vocab.uses, 2)
    material = rng.choice(vocab.materials)
    article = _article(adjective).capitalize()
    first = f"{article} {adjective} {noun} with {material}, made for {use}."
    second = rng.choice(
        (
            f"A favorite for {other_use}.",
            f"Also great for {other_use}, from {rng.choice(vocab.brands)}.",
            f"Designed for {other_use} and built to last.",
        )
    )
    return f"{first} {second}"


def review(vocab: CategoryVocab, rng: random.Random, positive: bool, noun: str, brand: str) -> str:
    """A short review: sentiment opener, a sentence on the use, and category-specific details."""
    use = rng.choice(vocab.uses)
    if positive:
        praise, more = rng.sample(vocab.praise, 2)
        parts = [
            f"{rng.choice(POSITIVE_OPENERS)}! I bought the {noun} for {use} and {praise}.",
            f"{more.capitalize()}.",
        ]
        if rng.random() < 0.5:
            parts.append(f"The {rng.choice(vocab.materials)} from {brand} is excellent.")
    else:
        complaint, more = rng.sample(vocab.complaints, 2)
        parts = [
            f"{rng.choice(NEGATIVE_OPENERS)}. I bought the {noun} for {use}, but {complaint}.",
        ]
        if rng.random() < 0.5:
            parts.append(f"Also {more}.")
        else:
            parts.append(f"Expected better from {brand}.")
    return " ".join(parts)


def _title_case(words: str) -> str:
    """Capitalise each word but keep existing capitals (RPG, PC, Dutch)."""
    return " ".join(word[:1].upper() + word[1:] for word in words.split())


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
