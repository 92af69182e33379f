"""The baseline for bench/voice_concurrency.py: a Twilio voice bot built the way Pipecat's docs and examples show,
every call in one process: FastAPI answer webhook returning <Connect><Stream>, FastAPIWebsocketTransport with
TwilioFrameSerializer, a SileroVADAnalyzer per call in the user aggregator, NvidiaSTTService (Riva), OpenAILLMService
and OpenAITTSService (24 kHz, resampled to 8 kHz by the transport), PipelineTask + PipelineRunner per call.

The AI services are the same stand-ins (bench/standins.py) the voice server is measured against. No backend, no
recording, no pacing to the carrier's playhead: the minimum a Pipecat app does for a phone call.

Run: .venv/bin/python bench/plain_pipecat.py --port 8461 --riva 127.0.0.1:50061 --standin-url http://127.0.0.1:8361
"""

from __future__ import annotations

import argparse
import sys

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import Response
from loguru import logger

GREETING = "Hello and thank you for calling Test Clinic. This is the automated assistant. How can I help you today?"
SYSTEM_PROMPT = "You are the receptionist of Test Clinic. Answer in one short sentence."


def create_app(public_url: str, riva: str, standin_url: str) -> FastAPI:
    app = FastAPI()
    ws_url = public_url.replace("http://", "ws://").replace("https://", "wss://") + "/ws"

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/twilio/voice")
    async def answer(_: Request) -> Response:
        twiml = f'<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="{ws_url}"/></Connect></Response>'
        return Response(twiml, media_type="application/xml")

    @app.websocket("/ws")
    async def media(websocket: WebSocket) -> None:
        await websocket.accept()
        await run_bot(websocket, riva, standin_url)

    return app


async def run_bot(websocket: WebSocket, riva: str, standin_url: str) -> None:
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.frames.frames import TTSSpeakFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.runner import PipelineRunner
    from pipecat.pipeline.task import PipelineParams, PipelineTask
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import (
        LLMContextAggregatorPair,
        LLMUserAggregatorParams,
    )
    from pipecat.runner.utils import parse_telephony_websocket
    from pipecat.serializers.twilio import TwilioFrameSerializer
    from pipecat.services.nvidia.stt import NvidiaSTTService
    from pipecat.services.openai.llm import OpenAILLMService
    from pipecat.services.openai.tts import OpenAITTSService
    from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport

    _, call_data = await parse_telephony_websocket(websocket)
    serializer = TwilioFrameSerializer(stream_sid=call_data["stream_id"], call_sid=call_data["call_id"],
                                       params=TwilioFrameSerializer.InputParams(auto_hang_up=False))
    transport = FastAPIWebsocketTransport(websocket=websocket, params=FastAPIWebsocketParams(
        audio_in_enabled=True, audio_out_enabled=True, add_wav_header=False, serializer=serializer))
    stt = NvidiaSTTService(server=riva, api_key=None, use_ssl=False,
                           model_function_map={"function_id": "", "model_name": "stand-in"})
    llm = OpenAILLMService(api_key="none", base_url=f"{standin_url}/v1",
                           settings=OpenAILLMService.Settings(model="stand-in", max_tokens=40,
                                                              system_instruction=SYSTEM_PROMPT))
    tts = OpenAITTSService(api_key="none", base_url=f"{standin_url}/v1", voice="alloy", sample_rate=24000)
    context = LLMContext()
    aggregators = LLMContextAggregatorPair(context, user_params=LLMUserAggregatorParams(
        vad_analyzer=SileroVADAnalyzer()))
    user, assistant = aggregators.user(), aggregators.assistant()
    pipeline = Pipeline([transport.input(), stt, user, llm, tts, transport.output(), assistant])
    task = PipelineTask(pipeline, params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000,
                                                        enable_metrics=True, enable_usage_metrics=True),
                        enable_rtvi=False)

    @transport.event_handler("on_client_connected")
    async def _connected(_transport: object, _client: object) -> None:
        await task.queue_frames([TTSSpeakFrame(GREETING)])

    @transport.event_handler("on_client_disconnected")
    async def _disconnected(_transport: object, _client: object) -> None:
        await task.cancel()

    await PipelineRunner(handle_sigint=False).run(task)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--riva", required=True, help="host:port of the Riva stand-in")
    parser.add_argument("--standin-url", required=True, help="http://host:port of the LLM/TTS stand-ins")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    import uvicorn

    app = create_app(f"http://127.0.0.1:{args.port}", args.riva, args.standin_url.rstrip("/"))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, loop="uvloop",
                ws_max_size=1048576)


if __name__ == "__main__":
    main()
