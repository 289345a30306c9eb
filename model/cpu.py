"""What the CPU is, from ``/proc/cpuinfo``: its model name (for benchmark reports) and whether it computes
bfloat16 natively (for ``precision: auto``).

Nothing here imports torch at import time.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

__all__ = ["cpu_flags", "cpu_name", "cpu_has_bfloat16"]

CPUINFO = Path("/proc/cpuinfo")

# oneDNN ISA limits (ONEDNN_MAX_CPU_ISA) below the first with bfloat16 dot products (AVX512_CORE_BF16).
_ONEDNN_WITHOUT_BF16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}


def _field(keys: tuple[str, ...], cpuinfo: Path) -> str | None:
    """The value of the first line of ``cpuinfo`` that starts with one of ``keys`` (None: none, or unreadable)."""
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                if line.startswith(keys) and ":" in line:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags(cpuinfo: Path = CPUINFO) -> set[str]:
    """The CPU's feature flags (x86 ``flags``, Arm ``Features``); empty where unknown."""
    return set((_field(("flags", "Features"), cpuinfo) or "").split())


def cpu_name(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's model name (``AMD EPYC 9B14``), else what Python knows of the machine (``x86_64``)."""
    return _field(("model name",), cpuinfo) or platform.processor() or platform.machine()


def cpu_has_bfloat16() -> bool:
    """Does this CPU compute bfloat16 natively, as torch runs here? x86: AVX512-BF16 or AMX-BF16 (in
    /proc/cpuinfo), with torch's kernels at AVX512 and oneDNN not limited below its bfloat16 ISA
    (``ATEN_CPU_CAPABILITY`` / ``ONEDNN_MAX_CPU_ISA``); Arm: the ``bf16`` feature. Elsewhere bfloat16
    is emulated, slower than float32."""
    import torch

    flags = cpu_flags()
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "bf16" in flags
    if not flags & {"avx512_bf16", "amx_bf16"}:
        return False
    if torch.backends.cpu.get_cpu_capability() not in ("AVX512",):
        return False
    return os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() not in _ONEDNN_WITHOUT_BF16
