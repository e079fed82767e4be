"""Pick the replay loader from what a path holds, so the CLI takes one ``--data PATH`` argument."""

from __future__ import annotations

from pathlib import Path

from llmrec_stream.sources.amazon import amazon_files, load_amazon2018
from llmrec_stream.sources.atomic import atomic_replay, load_atomic
from llmrec_stream.sources.base import Replay


def load_replay(path: Path | str) -> Replay:
    """Load Amazon 2018 5-core reviews (a ``*_5.json.gz`` file or a folder of them) or an
    atomic-format folder (``*.inter`` files); anything else is a ``ValueError`` naming both.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"replay source {path} does not exist")
    if amazon_files(path):
        return load_amazon2018(path)
    if path.is_dir() and any(path.glob("*.inter")):
        return atomic_replay(load_atomic(path))
    raise ValueError(
        f"cannot tell what {path} holds: expected an Amazon 2018 *_5.json.gz file, a folder of "
        "them, or a folder with UniSRec/RecBole atomic *.inter files"
    )
