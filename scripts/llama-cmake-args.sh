#!/usr/bin/env bash
# Prints how llama.cpp (the embedded LLM) is compiled, for bootstrap and for the container image alike.
# Portable, never the build machine's native flags: a native build on an Intel CPU with AVX-512/AMX segfaulted in
# llama_decode on its first chat completion, and a cached or shipped binary must run on whatever CPU gets it.
# AVX2+FMA+F16C is what every x86-64 server of the last decade has; a CPU without AVX2 gets the SSE-only build.
if grep -qw avx2 /proc/cpuinfo 2>/dev/null; then SIMD="-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
else SIMD="-DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF"; fi
echo "-DGGML_NATIVE=OFF $SIMD -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF" \
  "-DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DGGML_BMI2=OFF"
