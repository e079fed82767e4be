"""The encoder benchmark's texts: real, mixed, reproducible; a clear error without the data."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrec_stream.bench.texts import (
    DEFAULT_DATA_DIR,
    BenchDataError,
    item_texts,
    load_bench_texts,
    review_texts,
)

needs_data = pytest.mark.skipif(
    not (DEFAULT_DATA_DIR / "scientific").is_dir(),
    reason=f"shared data not found at {DEFAULT_DATA_DIR} (a fresh clone has none)",
)


@needs_data
def test_mixes_reviews_and_items_reproducibly() -> None:
    texts = load_bench_texts(200)
    assert len(texts) == 200 and all(isinstance(t, str) and t for t in texts)
    assert texts == load_bench_texts(200)
    assert texts != load_bench_texts(200, seed=1)
    items = set(item_texts(DEFAULT_DATA_DIR))
    assert 90 <= sum(t in items for t in texts) <= 110
    lengths = sorted(len(t) for t in texts)
    assert lengths[10] < 60 < 300 < lengths[-10]  # short summaries and long reviews
    assert len(review_texts(DEFAULT_DATA_DIR)) > 10_000


def test_missing_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BenchDataError, match="shared data"):
        load_bench_texts(10, tmp_path)
    with pytest.raises(ValueError, match="n must be"):
        load_bench_texts(0, tmp_path)
