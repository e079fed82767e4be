"""Loaders for both on-disk formats, on small temp files, and the split they produce."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmrec_stream.datasets.sequences import load_dataset, load_loo_txt
from llmrec_stream.datasets.toys import tiny_dataset

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_leave_one_out_txt(tmp_path: Path) -> None:
    path = tmp_path / "Toy.txt"
    path.write_text("1 10 11 12 13\n2 11 12 14\n3 10 11\n", encoding="utf-8")
    data = load_loo_txt(path)
    assert data.name == "Toy" and data.user_ids == ["1", "2"]  # user 3 is too short
    assert data.item_ids == ["10", "11", "12", "13", "14"]
    assert [s.tolist() for s in data.train] == [[1, 2], [2]]
    assert data.valid_target.tolist() == [3, 3] and data.test_target.tolist() == [4, 5]
    assert [s.tolist() for s in data.test_input()] == [[1, 2, 3], [2, 3]]
    assert data.item_text is None


def test_duplicate_user_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "Dup.txt"
    path.write_text("1 10 11 12\n1 13 14 15\n", encoding="utf-8")
    with pytest.raises(ValueError, match="twice"):
        load_loo_txt(path)


def _atomic(folder: Path) -> None:
    header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    (folder / "Toy.item2index").write_text("A\t0\nB\t1\nC\t2\nD\t3\n", encoding="utf-8")
    (folder / "Toy.user2index").write_text("u0\t0\nu1\t1\n", encoding="utf-8")
    (folder / "Toy.text").write_text(
        "item_id:token\ttext:token_seq\nA\tapple\nB\tbanana\nC\tcherry\nD\tdate\n",
        encoding="utf-8")
    (folder / "Toy.train.inter").write_text(header + "0\t0 1\t2\n0\t0\t1\n1\t3\t0\n",
                                            encoding="utf-8")
    (folder / "Toy.valid.inter").write_text(header + "0\t0 1 2\t3\n1\t3 0\t1\n", encoding="utf-8")
    (folder / "Toy.test.inter").write_text(header + "0\t0 1 2 3\t0\n1\t3 0 1\t2\n",
                                           encoding="utf-8")


def test_atomic_folder(tmp_path: Path) -> None:
    _atomic(tmp_path)
    data = load_dataset(tmp_path)
    assert data.name == "Toy" and data.n_items == 4 and data.n_users == 2
    assert [s.tolist() for s in data.train] == [[1, 2, 3], [4, 1]]
    assert data.valid_target.tolist() == [4, 2] and data.test_target.tolist() == [1, 3]
    assert data.item_text == ["apple", "banana", "cherry", "date"]


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "absent")


def test_tiny_dataset_shapes() -> None:
    data = tiny_dataset()
    assert data.n_items == 5 and all(s.dtype == np.int64 for s in data.train)


@pytest.mark.skipif(not (SHARED / "beauty" / "Beauty.txt").is_file(),
                    reason="../shared/data/beauty/Beauty.txt is absent (fresh clone)")
def test_real_beauty_counts() -> None:
    data = load_dataset(SHARED / "beauty" / "Beauty.txt")
    assert (data.n_users, data.n_items) == (22363, 12101)
    assert sum(len(s) for s in data.train) + 2 * data.n_users == 198502


@pytest.mark.skipif(not (SHARED / "scientific").is_dir(),
                    reason="../shared/data/scientific is absent (fresh clone)")
def test_real_scientific_counts() -> None:
    data = load_dataset(SHARED / "scientific")
    assert (data.n_users, data.n_items) == (8442, 4385)
    assert data.item_text is not None and sum(bool(t) for t in data.item_text) > 4000
