"""ONNX Runtime session options for the int8 models the platform runs on CPU (smart-turn v3.2, the MiniLM query
encoder).

Why: ONNX Runtime runs int8 MatMuls with u8s8 kernels. On x86 CPUs without VNNI (SSE4.1, AVX2, AVX-512 without VNNI:
e.g. an AMD EPYC whose VM offers AVX2 only, older Xeons) its default kernel sums pairs of u8*s8 products in int16,
which saturates, so the same model answers differently there than on a CPU with VNNI. On an AVX2 AMD EPYC
smart-turn scored a caller's paused "I was wondering if" 0.97 (finished) instead of 0.06, and cut off 6 of 7
espeak-ng voices' paused sentences more often (BENCHMARKS.md, "smart-turn on x86 CPUs without VNNI").
`session.x64quantprecision` (kOrtSessionOptionsAvx2PrecisionMode) takes the exact u8u8 kernel instead, about 14 %
slower there. It is set only where it is needed: on an Intel Xeon with AVX-512 VNNI it also moves the model off the
VNNI kernel, which is exact already, and smart-turn took 75 ms instead of 42 (BENCHMARKS.md, "smart-turn's exact
kernel only where the CPU lacks VNNI"). ARM is never affected.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

import onnxruntime as ort

# The instructions that give ONNX Runtime's u8s8 kernels a non-saturating 32-bit accumulate (/proc/cpuinfo names).
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni"})
X86_MACHINES = frozenset({"x86_64", "amd64", "i386", "i686"})


def exact_kernel_needed(machine: str, cpu_flags: frozenset[str] | None) -> bool:
    """Whether u8s8 MatMuls would saturate on this CPU: x86 without VNNI. Flags not known (no /proc/cpuinfo, e.g.
    macOS on Intel): assume they would, since the exact kernel is only slower, never wrong."""
    if machine.lower() not in X86_MACHINES:
        return False
    return cpu_flags is None or not cpu_flags & VNNI_FLAGS


def _cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str] | None:
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return None


@functools.cache
def _this_cpu_needs_exact_kernel() -> bool:
    return exact_kernel_needed(platform.machine(), _cpu_flags())


def exact_int8(options: ort.SessionOptions) -> ort.SessionOptions:
    """`options`, set so int8 MatMuls give the same answers on every x86 CPU."""
    if _this_cpu_needs_exact_kernel():
        options.add_session_config_entry("session.x64quantprecision", "1")
    return options
