# One image for every Python service (backend, voice server, CPU speech servers); the command picks the service.
FROM python:3.11.13-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake libsndfile1 curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Everything but what .dockerignore leaves out (the UI, tests, local state): new packages need no edit here.
COPY . .
# The runtime packages pinned with their hashes (requirements.lock), llama.cpp compiled with bootstrap's portable
# flags (never -march=native: the image runs on any x86-64 host), then the project itself without resolving anything.
RUN pip install --require-hashes --no-deps -r requirements.lock \
    && CMAKE_ARGS="$(bash scripts/llama-cmake-args.sh)" pip install --no-deps \
       "$(grep -o 'llama-cpp-python\[server\]==[0-9.]*' pyproject.toml)" \
    && pip install --no-deps . && pip check \
    && pip install --require-hashes --no-deps -r requirements-nodeps.lock
# The GPU image adds XTTS (EXTRAS=xtts: torch, coqui-tts), resolved at build time: it is not in the lock.
ARG EXTRAS=""
RUN if [ -n "$EXTRAS" ]; then pip install ".[${EXTRAS}]"; fi
RUN useradd --create-home --uid 10001 app && mkdir -p /data && chown app /data
USER app
ENV VOICEAGENT_STATE_DIR=/data
