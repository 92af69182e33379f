"""Prometheus metrics of the TTS server (GET /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("tts_requests_total", "HTTP requests by route and status", ["route", "status"])
ACTIVE = Gauge("tts_active_streams", "Speech responses streaming now")
TTFA = Histogram(
    "tts_time_to_first_audio_seconds",
    "From the request to the first audio bytes",
    ["engine"],
    buckets=(0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0, 5.0),
)
RTF = Histogram(
    "tts_real_time_factor",
    "Synthesis time divided by the duration of the audio produced",
    ["engine"],
    buckets=(0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0),
)
AUDIO_SECONDS = Counter("tts_audio_seconds_total", "Seconds of audio synthesized", ["engine"])
REJECTED = Counter("tts_rejected_total", "Requests refused for lack of capacity (503)", ["reason"])
