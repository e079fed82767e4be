"""What the process may use of the machine's CPU, and which instruction sets it has."""

from __future__ import annotations

import os
from pathlib import Path

#: The CPU features inference kernels pick their code path by: int8 speed hinges on VNNI or
#: AMX, bf16 on AVX512-BF16 or AMX (onnxruntime, OpenVINO and PyTorch all dispatch on them).
SIMD_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
              "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


def usable_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """Every feature flag of the first CPU in `cpuinfo` (empty where it cannot be read)."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                return value.split()
    except OSError:
        pass
    return []


def has_amx_bf16(flags: list[str] | None = None) -> bool:
    """Whether the CPU multiplies bf16 tiles in hardware (Intel AMX): there a bf16 graph is
    several times faster than fp32, without AMX it is not."""
    found = set(cpu_flags() if flags is None else flags)
    return {"amx_tile", "amx_bf16"} <= found
