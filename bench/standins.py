"""Remote stand-ins for the AI services, with fixed realistic timing, for the concurrency benchmark
(bench/voice_concurrency.py). They speak the protocols the pipeline's clients use, so the voice server runs its
production code paths unchanged; only the "models" are replaced by timers:

- Riva ASR, gRPC `RivaSpeechRecognition/StreamingRecognize` (what Pipecat's NvidiaSTTService calls, pipelines/stt.py):
  loud 20 ms windows (RMS) are speech; interim results every 400 ms of speech; the final comes `--stt-final-ms`
  (150) after the last speech audio arrived, unless speech resumes first; a half-closed stream still gets it.
- OpenAI-compatible `POST /v1/chat/completions` (pipelines/llm.py): streaming SSE, first token after
  `--llm-first-token-ms` (200), then `--llm-tokens-per-s` (50); honours max_tokens and stream_options.include_usage.
  Non-streaming requests (the prompt-cache warm-up) answer after the first-token delay.
- The project's TTS protocol, `POST /v1/audio/speech` (pipelines/tts_client.py; also OpenAI's): raw PCM16 at the
  requested `sample_rate` (24 kHz when absent, as OpenAI does), first audio after `--tts-first-audio-ms` (120), then
  produced at real-time factor `--tts-rtf` (0.1). The audio is a loud tone, about 65 ms per input character.

Run: .venv/bin/python -m bench.standins --grpc-port 50061 --http-port 8361
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import signal
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import numpy as np
import riva.client.proto.riva_asr_pb2 as rasr
import riva.client.proto.riva_asr_pb2_grpc as rasr_grpc
from aiohttp import web

log = logging.getLogger("bench.standins")

SPEECH_RMS = 500.0  # int16 RMS of a 20 ms window that counts as speech (the simulator sends digital silence)
INTERIM_EVERY_S = 0.4
TRANSCRIPT = "what are your opening hours on saturday"
ANSWER = ("We are open on Saturday from nine in the morning until one in the afternoon, and you can book a visit "
          "online or by phone at any time.")
SECONDS_PER_CHAR = 0.065
TTS_CHUNK_S = 0.1  # audio per streamed chunk


@dataclass(frozen=True)
class Timing:
    stt_final_s: float = 0.15
    llm_first_token_s: float = 0.2
    llm_tokens_per_s: float = 50.0
    tts_first_audio_s: float = 0.12
    tts_rtf: float = 0.1


# -- ASR (Riva gRPC) ------------------------------------------------------------------------------------------------
class StandInAsr(rasr_grpc.RivaSpeechRecognitionServicer):
    def __init__(self, timing: Timing) -> None:
        self.timing = timing
        self.streams = 0

    async def GetRivaSpeechRecognitionConfig(  # noqa: N802 - gRPC method name
        self, request: rasr.RivaSpeechRecognitionConfigRequest, context: grpc.aio.ServicerContext
    ) -> rasr.RivaSpeechRecognitionConfigResponse:
        """What the voice server asks first, as of a real Riva: the streaming model it serves per language."""
        response = rasr.RivaSpeechRecognitionConfigResponse()
        cfg = response.model_config.add()
        cfg.model_name = "stand-in"
        cfg.parameters.update({"type": "online", "streaming": "true", "language_code": "en-US"})
        return response

    async def StreamingRecognize(  # noqa: N802 - gRPC method name
        self, request_iterator: AsyncIterator[rasr.StreamingRecognizeRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[rasr.StreamingRecognizeResponse]:
        out: asyncio.Queue[rasr.StreamingRecognizeResponse | None] = asyncio.Queue()
        reader = asyncio.create_task(self._read(request_iterator, out))
        self.streams += 1
        try:
            while (item := await out.get()) is not None:
                yield item
        finally:
            self.streams -= 1
            reader.cancel()

    async def _read(self, requests: AsyncIterator[rasr.StreamingRecognizeRequest],
                    out: asyncio.Queue[rasr.StreamingRecognizeResponse | None]) -> None:
        rate, interim = 16000, True
        speech_s = 0.0  # speech audio in the current utterance
        next_interim_s = INTERIM_EVERY_S
        final_task: asyncio.Task[None] | None = None
        carry = b""

        async def final_later() -> None:
            await asyncio.sleep(self.timing.stt_final_s)
            out.put_nowait(_response(TRANSCRIPT, is_final=True))

        try:
            async for request in requests:
                if request.HasField("streaming_config"):
                    cfg = request.streaming_config
                    rate = cfg.config.sample_rate_hertz or rate
                    interim = cfg.interim_results
                    continue
                data = carry + request.audio_content
                window = int(rate * 0.02) * 2
                usable = len(data) - len(data) % window
                carry = data[usable:]
                if not usable:
                    continue
                frames = np.frombuffer(data[:usable], dtype=np.int16).astype(np.float32).reshape(-1, window // 2)
                loud = np.sqrt(np.mean(frames * frames, axis=1)) > SPEECH_RMS
                if not loud.any():
                    continue
                # Speech (again): whatever final was pending waits for the new end of speech.
                if final_task is not None and not final_task.done():
                    final_task.cancel()
                else:
                    speech_s, next_interim_s = 0.0, INTERIM_EVERY_S
                speech_s += float(loud.sum()) * 0.02
                if interim and speech_s >= next_interim_s:
                    next_interim_s += INTERIM_EVERY_S
                    words = TRANSCRIPT.split()
                    shown = max(1, min(len(words), int(speech_s / 0.3)))
                    out.put_nowait(_response(" ".join(words[:shown]), is_final=False))
                final_task = asyncio.create_task(final_later())
            # Half-closed by the client (the call pipeline does so when its VAD hears the caller stop): as a
            # Riva server, finalize what is pending rather than drop it.
            if final_task is not None and not final_task.done():
                await final_task
        finally:
            if final_task is not None and not final_task.done():
                final_task.cancel()
            out.put_nowait(None)


def _response(text: str, *, is_final: bool) -> rasr.StreamingRecognizeResponse:
    alt = rasr.SpeechRecognitionAlternative(transcript=text, confidence=0.9 if is_final else 0.0)
    result = rasr.StreamingRecognitionResult(alternatives=[alt], is_final=is_final, stability=1.0 if is_final else 0.5,
                                             channel_tag=1)
    return rasr.StreamingRecognizeResponse(results=[result])


# -- LLM (OpenAI chat completions) -------------------------------------------------------------------------------
def _chunk(completion_id: str, model: str, delta: dict[str, str], finish: str | None) -> bytes:
    body = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


async def chat_completions(request: web.Request) -> web.StreamResponse:
    timing: Timing = request.app["timing"]
    body = await request.json()
    model = str(body.get("model") or "stand-in")
    max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 64)
    words = ANSWER.split()
    tokens = [w if i == 0 else " " + w for i, w in enumerate(words)][: max(1, max_tokens)]
    prompt_tokens = sum(len(str(m.get("content") or "")) for m in body.get("messages", [])) // 4
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
    started = time.monotonic()
    await asyncio.sleep(timing.llm_first_token_s)
    if not body.get("stream"):
        return web.json_response({
            "id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(tokens)},
                         "finish_reason": "length" if len(tokens) < len(words) else "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(tokens),
                      "total_tokens": prompt_tokens + len(tokens)}})
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    await resp.write(_chunk(completion_id, model, {"role": "assistant", "content": ""}, None))
    for i, token in enumerate(tokens):
        # Token i is due at first token + i / rate, whatever our own scheduling delays were.
        due = started + timing.llm_first_token_s + i / timing.llm_tokens_per_s
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await resp.write(_chunk(completion_id, model, {"content": token}, None))
    await resp.write(_chunk(completion_id, model, {}, "length" if len(tokens) < len(words) else "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                 "choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(tokens),
                                          "total_tokens": prompt_tokens + len(tokens)}}
        await resp.write(f"data: {json.dumps(usage)}\n\n".encode())
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


# -- TTS (POST /v1/audio/speech, raw PCM) ---------------------------------------------------------------------------
_TONES: dict[int, bytes] = {}


def tone(rate: int) -> bytes:
    """One second of a loud two-partial tone at `rate` (cached): loud enough to read as speech to the caller."""
    if rate not in _TONES:
        t = np.arange(rate) / rate
        wave = 5000 * np.sin(2 * math.pi * 200 * t) + 2000 * np.sin(2 * math.pi * 600 * t)
        _TONES[rate] = wave.astype(np.int16).tobytes()
    return _TONES[rate]


async def speech(request: web.Request) -> web.StreamResponse:
    timing: Timing = request.app["timing"]
    try:
        body = await request.json()
        text = str(body["input"])
        rate = int(body.get("sample_rate") or 24000)
    except (ValueError, KeyError, TypeError) as exc:
        return web.json_response({"detail": f"bad request: {exc}"}, status=400)
    if not 8000 <= rate <= 48000:
        return web.json_response({"detail": f"sample_rate {rate} not supported"}, status=400)
    started = time.monotonic()
    total_s = max(0.3, SECONDS_PER_CHAR * len(text))
    one_s = tone(rate)
    chunk_bytes = int(rate * TTS_CHUNK_S) * 2
    total_bytes = int(rate * total_s) * 2
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await resp.prepare(request)
    sent = 0
    while sent < total_bytes:
        # Chunk k is ready at first audio + (audio before it) x RTF.
        due = started + timing.tts_first_audio_s + (sent / 2 / rate) * timing.tts_rtf
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        n = min(chunk_bytes, total_bytes - sent)
        offset = sent % len(one_s)
        piece = (one_s[offset:] + one_s)[:n]
        await resp.write(piece)
        sent += n
    await resp.write_eof()
    return resp


async def health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def http_app(timing: Timing) -> web.Application:
    app = web.Application()
    app["timing"] = timing
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/audio/speech", speech)
    app.router.add_get("/health", health)
    return app


async def serve(host: str, grpc_port: int, http_port: int, timing: Timing) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    rasr_grpc.add_RivaSpeechRecognitionServicer_to_server(StandInAsr(timing), server)
    if server.add_insecure_port(f"{host}:{grpc_port}") == 0:
        raise SystemExit(f"stand-ins: cannot listen on {host}:{grpc_port}")
    await server.start()
    runner = web.AppRunner(http_app(timing), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, http_port, backlog=1024).start()
    log.warning("stand-ins ready: gRPC %s:%s, HTTP %s:%s", host, grpc_port, host, http_port)
    await stop.wait()
    await server.stop(1)
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--stt-final-ms", type=float, default=150)
    parser.add_argument("--llm-first-token-ms", type=float, default=200)
    parser.add_argument("--llm-tokens-per-s", type=float, default=50)
    parser.add_argument("--tts-first-audio-ms", type=float, default=120)
    parser.add_argument("--tts-rtf", type=float, default=0.1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    timing = Timing(stt_final_s=args.stt_final_ms / 1000, llm_first_token_s=args.llm_first_token_ms / 1000,
                    llm_tokens_per_s=args.llm_tokens_per_s, tts_first_audio_s=args.tts_first_audio_ms / 1000,
                    tts_rtf=args.tts_rtf)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.host, args.grpc_port, args.http_port, timing))


if __name__ == "__main__":
    main()
