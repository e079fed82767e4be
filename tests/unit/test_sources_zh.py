"""The Chinese and mixed synthetic worlds: deterministic, really Chinese, English kept as is."""

from __future__ import annotations

import re

import pytest

from llmrec_stream.events.topics import COMMENTS
from llmrec_stream.sources.synthetic import synthetic_replay

HAN = re.compile(r"[\u4e00-\u9fff]")


def _bytes(world: object) -> list[tuple[bytes, bytes]]:
    return [ev.encode() for ev in world]  # type: ignore[attr-defined]


def test_the_chinese_world_is_deterministic_and_chinese() -> None:
    world = synthetic_replay(n_items=40, n_users=20, n_events=300, seed=4, lang="zh")
    assert _bytes(world) == _bytes(synthetic_replay(40, 20, 300, seed=4, lang="zh"))
    assert all(HAN.search(ev.value["title"]) for ev in world.items)
    comments = [ev.value["text"] for ev in world.events if ev.topic == COMMENTS]
    assert comments and all(HAN.search(t) and "，" in t for t in comments)
    assert {1, 2} & {ev.value.get("rating") for ev in world.events if ev.topic == COMMENTS}


def test_a_mixed_world_has_both_languages_in_every_category() -> None:
    world = synthetic_replay(n_items=48, n_users=10, n_events=200, seed=4, lang="mixed")
    for category in world.categories:
        langs = {world.item_lang[i] for i, c in world.item_category.items() if c == category}
        assert langs == {"en", "zh"}, category
    english = [ev for ev in world.items if world.item_lang[ev.key] == "en"]
    assert english and not any(HAN.search(ev.value["title"]) for ev in english)
    comments = [ev.value["text"] for ev in world.events if ev.topic == COMMENTS]
    assert all(HAN.search(t) for t in comments)


def test_english_output_does_not_change_with_the_new_parameter() -> None:
    assert _bytes(synthetic_replay(seed=9)) == _bytes(synthetic_replay(seed=9, lang="en"))
    with pytest.raises(ValueError, match="lang"):
        synthetic_replay(lang="fr")
