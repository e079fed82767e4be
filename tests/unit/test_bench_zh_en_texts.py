"""The ``zh-en`` benchmark text set: deterministic, half Chinese, items and comments."""

from __future__ import annotations

import pytest

from llmrec_stream.bench.texts import zh_en_texts


def _chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@pytest.mark.parametrize("n", [1, 7, 400])
def test_half_chinese_half_english_and_the_same_every_time(n: int) -> None:
    texts = zh_en_texts(n)
    assert len(texts) == n and texts == zh_en_texts(n)
    assert sum(map(_chinese, texts)) == n - n // 2
    assert all(t.strip() for t in texts)


def test_items_and_comments_of_both_languages() -> None:
    texts = zh_en_texts(200)
    items = [t for t in texts if ". " in t and ", " in t.rsplit(". ", 1)[-1]]  # ... tags
    assert any(_chinese(t) for t in items) and any(not _chinese(t) for t in items)
    assert len(set(texts)) > 150  # not one text repeated
    assert zh_en_texts(200, seed=1) != texts


def test_rejects_an_empty_set() -> None:
    with pytest.raises(ValueError, match="n must be >= 1"):
        zh_en_texts(0)
