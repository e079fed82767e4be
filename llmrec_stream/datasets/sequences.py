"""Evaluation data: one in-memory form for both on-disk formats the harness reads.

Items are integer indices ``1..n_items``; index 0 is padding, so a score matrix has
``n_items + 1`` columns and column 0 is never ranked. Per user the split is leave-one-out:
``train[u]`` is the training sequence, ``valid_target[u]`` follows it and ``test_target[u]``
follows that. The validation input is ``train[u]``; the test input is ``train[u]`` plus the
validation target (``test_input``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from llmrec_stream.sources.atomic import load_atomic

IntArray = npt.NDArray[np.int64]
SPLITS: tuple[str, ...] = ("valid", "test")


@dataclass(frozen=True)
class SeqDataset:
    """Leave-one-out sequences; ``item_text[i]`` is the text of index ``i + 1`` when known."""

    name: str
    item_ids: list[str]
    train: list[IntArray]
    valid_target: IntArray
    test_target: IntArray
    user_ids: list[str] = field(default_factory=list)
    item_text: list[str] | None = None
    #: A refit view (``refit_view``): its "valid" split is the original test split, and it has
    #: no test split of its own, so nothing can select or stop on it by mistake.
    refit: bool = False
    #: The data set a refit view was made from (None for an original).
    parent: SeqDataset | None = field(default=None, repr=False, compare=False)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_users(self) -> int:
        return len(self.train)

    def inputs(self, split: str) -> list[IntArray]:
        """What a model sees to predict ``split``'s target (history in time order)."""
        if split == "valid":
            return self.train
        if split == "test":
            self._no_test_in_refit()
            return self.test_input()
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")

    def targets(self, split: str) -> IntArray:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if split == "test":
            self._no_test_in_refit()
        return self.valid_target if split == "valid" else self.test_target

    def _no_test_in_refit(self) -> None:
        if self.refit:
            raise ValueError(f"{self.name} is a refit view: its 'valid' split is the test split")

    def refit_view(self) -> SeqDataset:
        """Training sequences plus the validation item; "valid" targets are the test targets.

        The final test model of every model is fit on this view with the hyper-parameters
        (and, for neural models, the epoch count) chosen on the original validation split.
        The view is made once and kept: every model of a run fits the same view object.
        """
        if self.refit:
            raise ValueError(f"{self.name} is already a refit view")
        view = self.__dict__.get("_refit_view")
        if view is None:  # one view per data set, so fits of it can be shared (`FitCache`)
            view = SeqDataset(self.name, self.item_ids, self.test_input(), self.test_target,
                              self.test_target, self.user_ids, self.item_text, refit=True,
                              parent=self)
            object.__setattr__(self, "_refit_view", view)
        return view

    def test_input(self) -> list[IntArray]:
        return [np.append(s, t) for s, t in zip(self.train, self.valid_target, strict=True)]


def users_sha256(data: SeqDataset) -> str:
    """sha256 of the test split's (user id, target item id) pairs in order.

    Per-user results of two runs can be paired user by user only when they scored the same
    users, in the same order, against the same targets; equal fingerprints show that across
    results folders (`eval.merge`). Ids, not indices, so that the item order does not matter;
    a data set without user ids uses row numbers.
    """
    if data.refit:
        raise ValueError(f"{data.name} is a refit view: fingerprint the original data set")
    users = data.user_ids or [str(u) for u in range(data.n_users)]
    if len(users) != len(data.test_target):
        raise ValueError(f"{data.name}: {len(users)} user ids for {len(data.test_target)} "
                         "test targets")
    pairs = [[u, data.item_ids[int(t) - 1]] for u, t in zip(users, data.test_target, strict=True)]
    return hashlib.sha256(json.dumps(pairs, separators=(",", ":")).encode()).hexdigest()


def from_sequences(
    name: str,
    sequences: dict[str, list[str]],
    item_text: dict[str, str] | None = None,
    item_order: list[str] | None = None,
) -> SeqDataset:
    """Leave-one-out over full sequences (time order): last item test, second-to-last valid.

    Users with fewer than three items are dropped (they would have no training item).
    """
    items = list(item_order) if item_order is not None else []
    index = {item: i + 1 for i, item in enumerate(items)}
    users, train, valid, test = [], [], [], []
    for user, seq in sequences.items():
        if len(seq) < 3:
            continue
        for item in seq:
            if item not in index:
                items.append(item)
                index[item] = len(items)
        ids = np.array([index[i] for i in seq], dtype=np.int64)
        users.append(user)
        train.append(ids[:-2])
        valid.append(ids[-2])
        test.append(ids[-1])
    text = None if item_text is None else [item_text.get(i, "") for i in items]
    return SeqDataset(
        name, items, train, np.array(valid, np.int64), np.array(test, np.int64), users, text
    )


def load_loo_txt(path: Path | str, name: str | None = None) -> SeqDataset:
    """Read ``user item item ...`` lines (S3-Rec/ICLRec format, time order), leave-one-out."""
    path = Path(path)
    sequences: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            parts = line.split()
            if not parts:
                continue
            if parts[0] in sequences:
                raise ValueError(f"{path}:{number}: user {parts[0]} appears twice")
            sequences[parts[0]] = parts[1:]
    return from_sequences(name or path.stem, sequences)


def load_atomic_dataset(path: Path | str) -> SeqDataset:
    """The UniSRec atomic format with its own split, item text included."""
    ds = load_atomic(path)
    index = {item: i + 1 for i, item in enumerate(ds.item_ids)}
    users = [u for u in ds.user_ids if u in ds.test]
    train = [np.array([index[i] for i in ds.train[u]], dtype=np.int64) for u in users]
    valid = np.array([index[ds.valid[u][-1]] for u in users], dtype=np.int64)
    test = np.array([index[ds.test[u][-1]] for u in users], dtype=np.int64)
    text = [ds.item_text.get(i, "") for i in ds.item_ids]
    return SeqDataset(ds.name, list(ds.item_ids), train, valid, test, users, text)


def load_dataset(path: Path | str) -> SeqDataset:
    """A folder with ``*.train.inter`` is atomic; a file is one sequence per line."""
    path = Path(path)
    if path.is_dir():
        return load_atomic_dataset(path)
    if path.is_file():
        return load_loo_txt(path)
    raise FileNotFoundError(f"no data set at {path}")
