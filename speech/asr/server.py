"""Runs the ASR server: gRPC (Riva ASR + grpc.health.v1) and an HTTP side port with /health and /metrics.
Riva calls need the platform's service token (speech/asr/auth.py); health stays open."""

from __future__ import annotations

import asyncio
import logging
import signal
import time

import grpc
import riva.client.proto.riva_asr_pb2_grpc as rasr_grpc
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from riva.client.proto import health_pb2_grpc

from speech.asr.auth import ServiceTokenInterceptor
from speech.asr.config import AsrSettings
from speech.asr.engine import WhisperEngine, WorkerPool
from speech.asr.service import AsrRuntime, HealthServicer, RivaAsrServicer
from speech.asr.vad import SileroModel
from speech.common.logs import setup_logging
from speech.common.service_guard import require_service_secret

log = logging.getLogger("speech.asr")

_MAX_MESSAGE = 64 * 1024 * 1024  # Recognize carries whole recordings


def load_runtime(settings: AsrSettings) -> AsrRuntime:
    engine = WhisperEngine(
        settings.model_dir(),
        device=settings.asr_device,
        compute_type=settings.asr_compute_type,
        cpu_threads=settings.asr_cpu_threads,
        workers=settings.asr_workers,
        encoder_window_s=settings.asr_encoder_window_s,
    )
    t0 = time.perf_counter()
    engine.warm_up()
    log.info("whisper warmed up", extra={"warm_up_s": round(time.perf_counter() - t0, 3)})
    return AsrRuntime(settings, engine, SileroModel(), WorkerPool(settings.asr_workers, settings.asr_queue_timeout_s))


def _http_app(runtime: AsrRuntime) -> web.Application:
    async def health(_: web.Request) -> web.Response:
        body = {
            "status": "ok" if runtime.ready else "starting",
            "model": runtime.settings.asr_model_name,
            "active_streams": runtime.active_streams,
            "workers": runtime.pool.workers,
            "decodes_running": runtime.pool.running,
            "decodes_waiting": runtime.pool.waiting,
        }
        return web.json_response(body, status=200 if runtime.ready else 503)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    return app


async def serve(settings: AsrSettings) -> None:
    secret = require_service_secret(settings.service_token_secret.get_secret_value(), "ASR server")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    # The model loads in a thread so SIGTERM during start-up still stops us promptly.
    runtime = await asyncio.to_thread(load_runtime, settings)

    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE),
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=settings.asr_max_streams * 2 + 16,
        interceptors=[ServiceTokenInterceptor(secret)],
    )
    rasr_grpc.add_RivaSpeechRecognitionServicer_to_server(RivaAsrServicer(runtime), server)
    health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(runtime), server)
    address = f"{settings.asr_host}:{settings.asr_port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if bound == 0:
        raise SystemExit(f"ASR server: cannot listen on {address} (port in use? set ASR_PORT)")
    await server.start()

    http = web.AppRunner(_http_app(runtime), access_log=None)
    await http.setup()
    site = web.TCPSite(http, settings.asr_host, settings.asr_health_port)
    await site.start()
    runtime.ready = True
    log.info(
        "ASR server ready",
        extra={
            "grpc": address,
            "http": f"{settings.asr_host}:{settings.asr_health_port}",
            "workers": settings.asr_workers,
            "cpu_threads": settings.asr_cpu_threads,
        },
    )

    await stop.wait()
    log.info("shutting down", extra={"grace_s": settings.asr_shutdown_grace_s})
    runtime.ready = False  # health turns NOT_SERVING / 503 first, so balancers stop sending calls
    await server.stop(settings.asr_shutdown_grace_s)
    await http.cleanup()
    runtime.pool.shutdown()
    log.info("ASR server stopped")


def main() -> None:
    settings = AsrSettings()
    setup_logging("asr", settings.log_level, settings.log_json)
    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        pass
