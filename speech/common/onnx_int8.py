"""ONNX Runtime session options for the int8 models the platform runs on CPU (smart-turn v3.2, the MiniLM query
encoder).

Why: ONNX Runtime runs int8 MatMuls with u8s8 kernels. On x86 CPUs without VNNI (SSE4.1, AVX2, AVX-512 without VNNI:
e.g. an AMD EPYC whose VM offers AVX2 only, older Xeons) its default kernel sums pairs of u8*s8 products in int16,
which saturates, so the same model answers differently there than on a CPU with VNNI or AMX. On an AVX2 AMD EPYC
smart-turn scored a caller's paused "I was wondering if" 0.97 (finished) instead of 0.06, and cut off 6 of 7
espeak-ng voices' paused sentences more often (BENCHMARKS.md, "smart-turn on x86 CPUs without VNNI").
`session.x64quantprecision` (kOrtSessionOptionsAvx2PrecisionMode) takes the exact u8u8 kernel on those CPUs only,
about 14 % slower there; CPUs with VNNI or AMX, and ARM, run as before.
"""

from __future__ import annotations

import onnxruntime as ort


def exact_int8(options: ort.SessionOptions) -> ort.SessionOptions:
    """`options`, set so int8 MatMuls give the same answers on every x86 CPU."""
    options.add_session_config_entry("session.x64quantprecision", "1")
    return options
