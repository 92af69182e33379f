# One image for every Python service (backend, voice server, CPU speech servers); the command picks the service.
FROM python:3.11.13-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake libsndfile1 curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Everything but what .dockerignore leaves out (the UI, tests, local state): new packages need no edit here.
COPY . .
ARG EXTRAS=local
# llama.cpp (embedded LLM) without -march=native: the image runs on any x86-64 host, not only the build machine's CPU.
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF"
RUN pip install ".[${EXTRAS}]"
RUN useradd --create-home --uid 10001 app && mkdir -p /data && chown app /data
USER app
ENV VOICEAGENT_STATE_DIR=/data
