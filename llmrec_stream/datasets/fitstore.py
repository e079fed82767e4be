"""Trained fits on disk, so that an interrupted evaluation resumes at its last finished fit.

One neural fit of the quality table takes up to an hour on a 2-core CPU and a whole part of
the table many hours, so a run killed in its fifth hour must not start again from zero. With a
store (``llmrec-stream eval --fit-store DIR``), every fit of a model that opts in
(`ModelSpec.stored`: the trained models; closed forms and blends are cheaper to redo than to
store) is written to ``DIR`` when it finishes, and a later run that needs the same fit loads
it instead of training: the same weights, so the same figures.

"The same fit" is everything a fit depends on, hashed into its file name (`FitStore.key`): the
model and its grid point, the seed and the epoch count of a refit, the data (the users
fingerprint of the original data set and whether this is its refit view, whose training
sequences include the validation item), the run's bounds (max epochs, patience, wall-clock cap,
threads, which change the numbers) and the item text encoder (its manifest), and the source
that defines fits, data and the validation metric (`FIT_SOURCES`): any change of that code or
of the settings starts afresh rather than load a fit it did not make.

Files are pickles written atomically (temporary file, then rename); load only a store your
own runs wrote. A file that cannot be read is logged and the fit is trained again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle  # noqa: S403 - the store holds this user's own fits (see the module doc)
import tempfile
from pathlib import Path
from typing import Any

import llmrec_stream
from llmrec_stream.datasets.sequences import SeqDataset, users_sha256

# `specs.py` (ModelSpec, EvalContext, Fitted) imports this module, so those are duck-typed here
# (``Any``) rather than imported back: the import graph has no cycle.

log = logging.getLogger(__name__)
#: Sources whose change can change a fit (relative to the package root): the models and their
#: training loop, the data and the validation metric that early stopping reads. Not the
#: harness, the caches or this store, which decide which fits are made, not what they are.
FIT_SOURCES: tuple[str, ...] = ("trainer", "datasets/sequences.py", "datasets/metrics.py",
                                "datasets/toys.py", "eval/peers.py")


def source_digest(parts: tuple[str, ...] = FIT_SOURCES) -> str:
    """sha256 over the package's Python sources under ``parts``, in path order."""
    root = Path(llmrec_stream.__file__).parent
    files: list[Path] = []
    for part in parts:
        path = root / part
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


class FitStore:
    """A folder of finished fits keyed by everything they depend on (see the module doc)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._code = source_digest()
        self._fingerprints: dict[int, tuple[SeqDataset, str]] = {}
        self.loaded = 0
        self.saved = 0

    def _fingerprint(self, data: SeqDataset) -> str:
        original = data.parent if data.refit else data
        if original is None:
            raise ValueError(f"{data.name}: a refit view without its original data set")
        hit = self._fingerprints.get(id(original))
        if hit is None or hit[0] is not original:
            hit = self._fingerprints[id(original)] = (original, users_sha256(original))
        return hit[1]

    def key(self, spec: Any, data: SeqDataset, params: dict[str, Any],
            ctx: Any) -> str:
        encoder = None
        if ctx.encoder_dir is not None:
            manifest = Path(ctx.encoder_dir) / "manifest.json"
            encoder = hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() \
                else str(ctx.encoder_dir)
        payload = {
            "model": spec.name, "params": params, "seed": ctx.seed if spec.seeded else None,
            "fixed_epochs": ctx.fixed_epochs, "data": self._fingerprint(data),
            "n_items": data.n_items, "refit": data.refit, "max_epochs": ctx.max_epochs,
            "patience": ctx.patience, "max_minutes": ctx.max_minutes, "threads": ctx.threads,
            "encoder": encoder, "code": self._code,
        }
        blob = json.dumps(payload, sort_keys=True, default=str).encode()
        return f"{spec.name}-{hashlib.sha256(blob).hexdigest()[:32]}"

    def load(self, key: str) -> Any:
        path = self.root / f"{key}.pkl"
        if not path.is_file():
            return None
        try:
            with path.open("rb") as f:
                fitted: Any = pickle.load(f)  # noqa: S301 - see the module doc
        except Exception:  # noqa: BLE001 - any unreadable file means: train again
            log.warning("fit store: %s unreadable, training again", path, exc_info=True)
            return None
        self.loaded += 1
        log.info("fit store: loaded %s", path.name)
        return fitted

    def save(self, key: str, fitted: Any) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".pkl")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(fitted, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.root / f"{key}.pkl")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.saved += 1

    def fit(self, spec: Any, data: SeqDataset, params: dict[str, Any],
            ctx: Any) -> Any:
        """The stored fit when there is one, else ``spec.fit``, stored."""
        key = self.key(spec, data, params, ctx)
        fitted = self.load(key)
        if fitted is None:
            fitted = spec.fit(data, dict(params), ctx)
            self.save(key, fitted)
        return fitted
