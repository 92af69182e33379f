"""Prometheus metrics of the ASR server (served on the HTTP side port at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0)

REQUESTS = Counter("asr_requests_total", "gRPC calls by method and final status code", ["method", "code"])
ACTIVE_STREAMS = Gauge("asr_active_streams", "StreamingRecognize calls in progress")
UTTERANCES = Counter("asr_utterances_total", "Final results sent")
FINAL_LATENCY = Histogram(
    "asr_final_latency_seconds",
    "From the arrival of the audio that ended the speech to the final result being sent",
    buckets=_LATENCY_BUCKETS,
)
DECODE_SECONDS = Histogram(
    "asr_decode_seconds", "Whisper decode time", ["kind"], buckets=_LATENCY_BUCKETS
)
RTF = Histogram(
    "asr_real_time_factor",
    "Decode time divided by audio duration",
    ["kind"],
    buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0),
)
QUEUE_WAITING = Gauge("asr_queue_waiting", "Decodes waiting for a free worker")
REJECTED = Counter("asr_rejected_total", "Calls refused for lack of capacity (RESOURCE_EXHAUSTED)", ["reason"])
FULL_WINDOW_RETRIES = Counter("asr_full_window_retries_total", "Decodes repeated with Whisper's full 30 s window")
