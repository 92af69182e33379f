# One image for every Python service (backend, voice server, CPU speech servers); the command picks the service.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake libsndfile1 curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY backend backend
COPY voice_server voice_server
COPY telephony telephony
COPY pipelines pipelines
COPY speech speech
COPY voicectl voicectl
COPY bench bench
COPY data data
ARG EXTRAS=local
RUN pip install ".[${EXTRAS}]"
RUN useradd --create-home --uid 10001 app && mkdir -p /data && chown app /data
USER app
ENV VOICEAGENT_STATE_DIR=/data
