"""The UniSRec/RecBole atomic format (``<Name>.train.inter``, ``.valid.inter``, ``.test.inter``,
``.text``, ``.item2index``, ``.user2index``), parsed once for replay and for the trainer.

The ``.inter`` files hold leave-one-out rows ``user  history  target`` with integer indices:
``train`` holds every growing prefix, ``valid`` and ``test`` one row per user. RecBole caps the
history at 50, so full sequences are rebuilt from the train rows' targets rather than read off
the longest history. The data carries order only; replay timestamps are synthesized.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmrec_stream.events.topics import ITEMS, PURCHASES
from llmrec_stream.sources.base import OutboundEvent, Replay, envelope

#: Synthesized replay clock: 2020-09-13T12:26:40Z plus one minute per sequence position.
DEFAULT_BASE_TS_MS = 1_600_000_000_000
DEFAULT_GAP_MS = 60_000
#: What follows an item title in ``.text``: an empty category list, or the top-level category.
_TITLE_ENDS = (". . ", ". Industrial & Scientific")


@dataclass(frozen=True, slots=True)
class AtomicDataset:
    """One atomic data set with original ids (reviewer ids, ASINs), not the integer indices.

    Per user, ``train`` is the training sequence, ``valid`` is ``train`` plus the validation
    target and ``test`` is ``valid`` plus the test target: the target is always the last item,
    and ``test`` is the user's full history. Users are listed in ``user2index`` order.
    """

    name: str
    item_text: dict[str, str]
    item_ids: list[str]
    user_ids: list[str]
    train: dict[str, list[str]]
    valid: dict[str, list[str]]
    test: dict[str, list[str]]


def load_atomic(dir_or_prefix: Path | str) -> AtomicDataset:
    """Parse a folder holding one ``*.train.inter`` (or the path prefix ``dir/Name``)."""
    prefix = _prefix(Path(dir_or_prefix))
    item_ids = _index(prefix.with_name(prefix.name + ".item2index"))
    user_ids = _index(prefix.with_name(prefix.name + ".user2index"))
    item_text = {
        asin: text.strip()
        for asin, text in _rows(prefix.with_name(prefix.name + ".text"), header=True)
    }
    train_rows: dict[str, list[tuple[list[str], str]]] = {}
    for user, history, target in _inter(prefix, "train", user_ids, item_ids):
        train_rows.setdefault(user, []).append((history, target))
    valid_target = {u: t for u, _, t in _inter(prefix, "valid", user_ids, item_ids)}
    test_target = {u: t for u, _, t in _inter(prefix, "test", user_ids, item_ids)}

    train: dict[str, list[str]] = {}
    valid: dict[str, list[str]] = {}
    test: dict[str, list[str]] = {}
    for user in user_ids:
        if user not in test_target or user not in valid_target:
            continue
        rows = train_rows.get(user, [])
        # Rows are written longest first; the shortest holds the untruncated start.
        if rows:
            shortest = min(rows, key=lambda row: len(row[0]))
            sequence = list(shortest[0])
            sequence.extend(target for _, target in reversed(rows))
        else:
            sequence = []
        train[user] = sequence
        valid[user] = [*sequence, valid_target[user]]
        test[user] = [*valid[user], test_target[user]]
    return AtomicDataset(prefix.name, item_text, item_ids, user_ids, train, valid, test)


def atomic_replay(
    ds: AtomicDataset,
    limit_users: int | None = None,
    base_ts_ms: int = DEFAULT_BASE_TS_MS,
    gap_ms: int = DEFAULT_GAP_MS,
) -> Replay:
    """Replay each user's full sequence as purchases, users interleaved round-robin.

    Position ``p`` of every sequence gets ``ts = base_ts_ms + p * gap_ms``; all users' p-th
    purchases come before anyone's (p+1)-th, in user order, so the stream is time ordered.
    """
    users = [u for u in ds.user_ids if u in ds.test][:limit_users]
    longest = max((len(ds.test[u]) for u in users), default=0)
    events: list[OutboundEvent] = []
    for position in range(longest):
        ts = base_ts_ms + position * gap_ms
        for user in users:
            sequence = ds.test[user]
            if position < len(sequence):
                value = envelope(f"{ds.name}:p:{user}:{position}", ts)
                value.update(user_id=user, item_id=sequence[position], amount=0.0, quantity=1)
                events.append(OutboundEvent(PURCHASES, user, value))
    items = [
        _item_event(ds.name, asin, ds.item_text.get(asin, ""), base_ts_ms) for asin in ds.item_ids
    ]
    return Replay(items=items, users=[], events=events)


def split_item_text(text: str) -> tuple[str, str, list[str]]:
    """Split ``title. categories. brand.`` into (title, rest, tags); unsplittable text stays whole.

    The categories part may be empty (``title. . brand.``) and titles may hold ``. `` themselves,
    so the split anchors on the empty category or on the top-level category name.
    """
    text = text.strip()
    cuts = [cut for cut in (text.find(m) for m in _TITLE_ENDS) if cut > 0]
    if not cuts:
        return text, text, []
    cut = min(cuts)
    title, rest = text[:cut].strip(), text[cut + 1 :].lstrip(". ").strip()
    brand = rest.rstrip(".").rsplit(". ", 1)[-1].strip() if rest else ""
    return title, rest, [brand] if brand else []


def _item_event(name: str, asin: str, text: str, ts: int) -> OutboundEvent:
    title, description, tags = split_item_text(text)
    value = envelope(f"{name}:item:{asin}", ts)
    value.update(item_id=asin, title=title or asin, description=description, tags=tags)
    return OutboundEvent(ITEMS, asin, value)


def _prefix(path: Path) -> Path:
    if path.is_dir():
        found = sorted(path.glob("*.train.inter"))
        if len(found) != 1:
            raise ValueError(f"expected one *.train.inter in {path}, found {len(found)}")
        return found[0].with_name(found[0].name.removesuffix(".train.inter"))
    if path.with_name(path.name + ".train.inter").is_file():
        return path
    raise ValueError(f"{path} is neither a folder with a *.train.inter nor an atomic prefix")


def _rows(file: Path, header: bool) -> list[list[str]]:
    with file.open(encoding="utf-8") as lines:
        rows = [line.rstrip("\n").split("\t") for line in lines if line.strip()]
    return rows[1:] if header else rows


def _index(file: Path) -> list[str]:
    """Read ``id<TAB>index`` lines into a list where position == index."""
    pairs = sorted((int(index), key) for key, index in _rows(file, header=False))
    if [index for index, _ in pairs] != list(range(len(pairs))):
        raise ValueError(f"{file} indices are not 0..n-1")
    return [key for _, key in pairs]


def _inter(
    prefix: Path, split: str, user_ids: list[str], item_ids: list[str]
) -> list[tuple[str, list[str], str]]:
    out = []
    for user, history, target in _rows(prefix.with_name(f"{prefix.name}.{split}.inter"), True):
        items = [item_ids[int(i)] for i in history.split()]
        out.append((user_ids[int(user)], items, item_ids[int(target)]))
    return out
