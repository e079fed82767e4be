#!/usr/bin/env bash
# The encoder benchmark on a GPU machine, in one go: CUDA provider, fp32 and fp16 graphs with
# I/O binding, against sentence-transformers on the same GPU (CPU if torch has no CUDA).
#
#   scripts/gpu_bench.sh            # uses .venv (or $PYTHON), writes bench-results/gpu/
#
# Needs an environment with the project installed with the `gpu`, `export` and `bench` extras
# (onnxruntime-gpu, never together with onnxruntime). Fails loudly, with a non-zero exit,
# when there is no GPU, when onnxruntime offers no CUDAExecutionProvider, or when the profile
# shows that the CUDA provider did not actually run the encoder's kernels (onnxruntime falls
# back to the CPU quietly when the CUDA/cuDNN libraries do not load).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
ARTIFACT="${ARTIFACT:-${LLMREC_ENCODER_DIR:-$HOME/.cache/llmrec-stream/encoder/all-MiniLM-L6-v2}}"
OUT="${OUT:-bench-results/gpu}"
TEXTS="${TEXTS:-2000}"
REPEATS="${REPEATS:-3}"
BATCH_SIZES="${BATCH_SIZES:-1,8,32,128}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

die() { echo "gpu_bench: FAILED: $*" >&2; exit 1; }

command -v nvidia-smi >/dev/null || die "nvidia-smi not found: no NVIDIA driver on this machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
  || die "nvidia-smi cannot see a GPU"

"$PYTHON" - <<'PY' || die "onnxruntime offers no CUDAExecutionProvider (install onnxruntime-gpu only)"
import onnxruntime as ort
providers = ort.get_available_providers()
print("onnxruntime", ort.__version__, "device", ort.get_device(), "providers", providers)
raise SystemExit(0 if "CUDAExecutionProvider" in providers else 1)
PY

if ! "$PYTHON" -m llmrec_stream export-encoder --out "$ARTIFACT" --int8; then
  die "could not export the encoder artifact to $ARTIFACT"
fi
# An artifact exported before fusion was part of the recipe: fuse it (a no-op when fused).
"$PYTHON" -c "import sys; from llmrec_stream.encoder.quantize import fuse_artifact; \
print(fuse_artifact(sys.argv[1]))" "$ARTIFACT" || die "could not fuse $ARTIFACT"

# The command itself raises (non-zero exit) unless CUDA ran the heavy kernels of both graphs.
"$PYTHON" -m llmrec_stream.bench encoder --device cuda --artifact "$ARTIFACT" \
  --texts "$TEXTS" --repeats "$REPEATS" --batch-sizes "$BATCH_SIZES" --profile --out "$OUT" \
  || die "bench encoder --device cuda failed (see above)"

# Belt and braces: read the written figures back and check where every contender ran.
"$PYTHON" - "$OUT/encoder-cuda.json" <<'PY' || die "the results do not show a CUDA run"
import json, sys
body = json.load(open(sys.argv[1]))
bad = {name: dev for name, dev in body["devices"].items()
       if name.startswith("onnx-") and dev != "CUDAExecutionProvider"}
for name, prof in body["profiles"].items():
    cuda = prof["by_provider_s"].get("CUDAExecutionProvider", 0.0)
    if cuda <= 0.0:
        bad[name] = f"no CUDA kernel time in the profile: {prof['by_provider_s']}"
if bad:
    print("not on CUDA:", bad, file=sys.stderr)
    raise SystemExit(1)
print("CUDAExecutionProvider ran every ONNX contender:", sorted(body["profiles"]))
PY
echo "gpu_bench: results in $OUT/encoder-cuda.json and $OUT/encoder-cuda.png"
