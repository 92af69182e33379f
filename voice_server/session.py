"""One live call on one media socket: builds the pipeline, runs it, and ends the call exactly once.

Every way a call can end goes through `_finish`: the caller hangs up (carrier `stop`, socket close, status
callback), the agent ends it (end_call, silence, maximum duration), a transfer, or a protocol error. The end is
reported with its reason, duration and usage; the recording is closed and handed to the uploader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from fastapi import WebSocket
from pipecat.frames.frames import LLMMessagesAppendFrame, TTSSpeakFrame
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams
from pipecat.workers.runner import WorkerRunner

from core.agent_config import TransferTarget
from core.call_events import (
    CallAnswered,
    CallEnded,
    CarrierCredentials,
    EndReason,
    FlowNodeEntered,
    ResolvedAgent,
    ServiceDegraded,
    ToolInvoked,
    TurnRecorded,
)
from core.live_feed import LiveFeedEvent
from pipelines.factory import CallPipeline, CallServices, CallSpec, build_call_pipeline, opening_frames
from pipelines.frames import InterimsWantedFrame, PlaybackMarkFrame
from pipelines.llm_chain import FallbackLLMService
from pipelines.streaming import StreamingAudio
from pipelines.stt_chain import FallbackRivaSTTService
from telephony.base import CarrierError, WarmTransfer, warm_room
from telephony.call_token import CallClaims, TransferClaims, transfer_url
from telephony.registry import CARRIERS, CarrierClients
from voice_server.agent_lookup import AgentLookup
from voice_server.call_registry import CallRegistry
from voice_server.config import VoiceServerSettings
from voice_server.live_feed import LiveFeed
from voice_server.media.browser import BrowserEvents, BrowserSerializer
from voice_server.media.pacer import SharedPacer
from voice_server.media.playout import PlayoutTracker
from voice_server.media.serializers import (
    CarrierSerializer,
    SerializerHooks,
    StreamInfo,
    TwilioMediaSerializer,
    VobizMediaSerializer,
)
from voice_server.media.takeover import Takeover
from voice_server.media.transport import CarrierTransport
from voice_server.metrics import VoiceMetrics
from voice_server.outbox import EventOutbox
from voice_server.recording import CallRecording, DiskWriter, RecordingUploader

log = logging.getLogger(__name__)

SEND_MARK_TIMEOUT_S = 60.0  # the goodbye may queue behind an answer still being spoken


class SessionDeps(Protocol):
    """What a call session uses of the voice server's process-wide state (voice_server/state.py's VoiceApp)."""

    settings: VoiceServerSettings
    carriers: CarrierClients
    warm_transfers: dict[str, tuple[CarrierCredentials, str]]
    outbox: EventOutbox
    metrics: VoiceMetrics
    writer: DiskWriter
    uploader: RecordingUploader
    call_services: CallServices
    calls: CallRegistry
    agents: AgentLookup  # a flow's hand-off looks up its target agent
    pacer: SharedPacer | None  # the process's one output timer (OUTPUT_PACER=shared); None: each call paces itself


class CallSession:
    def __init__(self, app: SessionDeps, claims: CallClaims, info: StreamInfo, websocket: WebSocket,
                 agent: ResolvedAgent, variables: dict[str, str], prepared_greeting: StreamingAudio | None,
                 speak_greeting: bool = True) -> None:
        self.app = app
        self.claims = claims
        self.info = info
        self.websocket = websocket
        self.agent = agent
        self.variables = variables
        self.prepared_greeting = prepared_greeting
        self.speak_greeting = speak_greeting
        self.call_id = claims.call_id
        self.tracker = PlayoutTracker()
        self.serializer: CarrierSerializer | None = None
        self.transport: CarrierTransport | None = None
        self.recording: CallRecording | None = None
        self.call: CallPipeline | None = None
        self.end_reason: EndReason | None = None
        self.end_detail = ""
        self.goodbye_played: bool | None = None
        self.finished = asyncio.Event()
        self._ending_task: asyncio.Task[None] | None = None
        self._max_task: asyncio.Task[None] | None = None
        self._hung_up = False
        self._finished_once = False
        self.started_wall = time.time()
        self.browser_events: BrowserEvents | None = None  # live transcript, browser test calls only
        self.feed = LiveFeed(self._watch_changed)  # interims and turn notes for the backend's live view
        self._watch_task: asyncio.Task[None] | None = None
        self.takeover: Takeover | None = None  # a supervisor's browser has the call (routes/takeover.py)

    # -- CallEventSink ----------------------------------------------------------------------------------------
    def turn(self, event: TurnRecorded) -> None:
        self.app.outbox.emit(event)
        self.feed.publish(LiveFeedEvent(type="turn", speaker=event.speaker, turn_index=event.turn_index,
                                        at_ms=event.end_ms))
        if self.browser_events is not None:
            self.browser_events.turn(event)

    def tool(self, event: ToolInvoked) -> None:
        self.app.outbox.emit(event)

    def degraded(self, event: ServiceDegraded) -> None:
        self.app.outbox.emit(event)
        self.app.metrics.error(f"degraded_{event.service}")

    def redacted(self, start_ms: int, end_ms: int) -> None:
        if self.recording is not None and self.agent.config.redaction.beep_recording:
            self.recording.mask(start_ms, end_ms)

    def flow_node(self, event: FlowNodeEntered) -> None:
        self.app.outbox.emit(event)

    def timeline_ms(self, monotonic_s: float | None = None) -> int:
        t = (monotonic_s - self.tracker.t0) if monotonic_s is not None else self.tracker.now_s()
        return max(0, int(t * 1000))

    # -- set-up and run ---------------------------------------------------------------------------------------
    def _build(self) -> None:
        s = self.app.settings
        hooks = SerializerHooks(on_stop=self._on_carrier_stop, on_protocol_error=self._on_protocol_error,
                                on_client_error=self._on_client_error)
        serializer_cls: Callable[..., CarrierSerializer] = {
            "twilio": TwilioMediaSerializer, "vobiz": VobizMediaSerializer, "browser": BrowserSerializer,
        }[self.info.carrier]
        self.serializer = serializer_cls(self.info, self.tracker, hooks,
                                         l16_byte_order=s.vobiz_inbound_l16_byte_order,
                                         caller_frame_ms=s.caller_frame_ms)
        params = FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            audio_in_sample_rate=self.info.in_sample_rate,
            audio_out_sample_rate=self.info.out_sample_rate,
            audio_out_10ms_chunks=max(1, s.audio_chunk_ms // 10),
            audio_out_end_silence_secs=0,
            audio_out_write_timeout_secs=15.0,
            serializer=self.serializer,
            allowed_origins=[],
        )
        self.transport = CarrierTransport(self.websocket, params, self.tracker, lead_s=s.playout_lead_ms / 1000,
                                          metrics=self.app.metrics, pacer=self.app.pacer)
        if self.agent.config.record:
            self.recording = CallRecording(self.app.writer, self.app.uploader, self.agent.org_id, self.call_id,
                                           self.info.in_sample_rate, t0=self.tracker.t0)
            self.tracker.clear_listeners.append(self.recording.recorder.drop_agent_after)
        spec = CallSpec(
            call_id=self.call_id, agent=self.agent.config, org_id=self.agent.org_id, variables=self.variables,
            knowledge_version=self.agent.knowledge_version,
            secrets=self.agent.secret_values(),
            in_sample_rate=self.info.in_sample_rate, out_sample_rate=self.info.out_sample_rate,
            prepared_greeting=self.prepared_greeting, speak_greeting=self.speak_greeting,
            outbound=self.claims.direction == "outbound",
        )
        self.call = build_call_pipeline(self.transport, spec, self.app.call_services, control=self, events=self)
        if self.agent.carrier_credentials is not None and self.info.carrier != "browser":
            self.transport.output().send_digits = self._send_digits
        if self.recording is not None:
            self.serializer.audio_sink = self.recording.recorder
            self.transport.output().audio_sink = self.recording.recorder
        self.call.latency.turn_listeners.append(self.app.metrics.observe_turn)
        self.app.metrics.watch_pipeline_errors(self.call.worker)
        if isinstance(self.call.stt, FallbackRivaSTTService):
            self.call.stt.on_interim = self._interim
            self.call.stt.watched = lambda: self.feed.watched
        if self.info.carrier == "browser":
            self.browser_events = BrowserEvents(self.transport.send_raw, self.call.stt, self.call.tts)
            self.call.worker.add_observer(self.browser_events)

        @self.transport.event_handler("on_client_disconnected")
        async def _closed(_transport: Any, _ws: Any) -> None:
            self._on_carrier_stop("caller_hangup")

    async def run(self) -> None:
        try:
            self._build()
        except Exception as exc:
            log.exception("call %s: could not build the pipeline", self.call_id)
            self.app.metrics.error("pipeline_setup")
            self.end_reason, self.end_detail = "error", f"pipeline set-up failed: {exc}"[:300]
            await self._carrier_hangup()
            await self._finish()
            return
        assert self.call is not None
        log.info("call %s: pipeline built in %.0f ms (greeting %s)", self.call_id, self.tracker.now_s() * 1000,
                 "prepared" if self.prepared_greeting else "live")
        self.app.outbox.emit(CallAnswered(event_id=f"{self.call_id}-answered"[:64], call_id=self.call_id))
        runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
        await runner.add_workers(self.call.worker)
        await self.call.worker.queue_frames(opening_frames(self.call))
        self._max_task = asyncio.create_task(self._max_duration_watch(), name=f"max-duration-{self.call_id}")
        try:
            await runner.run()
        except Exception as exc:
            log.exception("call %s: pipeline failed", self.call_id)
            self.app.metrics.error("pipeline_crash")
            if self.end_reason is None:
                self.end_reason, self.end_detail = "error", f"pipeline failed: {exc}"[:300]
            await self._carrier_hangup()
        finally:
            await self._finish()

    # -- ending -----------------------------------------------------------------------------------------------
    def _on_carrier_stop(self, reason: str) -> None:
        """The carrier ended the stream (stop, socket close, hang-up callback)."""
        if self.end_reason is None:
            self.end_reason = "caller_hangup" if reason == "caller_hangup" else "error"
            self.end_detail = "" if reason == "caller_hangup" else reason
        self._hung_up = True  # nothing left to hang up
        self._spawn_cancel(self.end_reason)

    def carrier_ended(self, detail: str) -> None:
        if self.end_reason is None:
            self.end_reason, self.end_detail = "caller_hangup", detail
        self._hung_up = True
        self._spawn_cancel("carrier ended the call")

    def _on_client_error(self, message: str) -> None:
        if self.browser_events is not None:
            self.browser_events.error(message)

    def _on_protocol_error(self, detail: str) -> None:
        log.warning("call %s: ending on protocol error: %s", self.call_id, detail)
        self.app.metrics.error("carrier_protocol")
        if self.end_reason is None:
            self.end_reason, self.end_detail = "error", detail[:500]

        async def _end() -> None:
            await self._carrier_hangup()
            await self._cancel_pipeline("protocol error")

        self._ending_task = self._ending_task or asyncio.create_task(_end(), name=f"end-{self.call_id}")

    def _spawn_cancel(self, reason: str) -> None:
        if self._ending_task is None or self._ending_task.done():
            self._ending_task = asyncio.create_task(self._cancel_pipeline(reason), name=f"cancel-{self.call_id}")

    async def _cancel_pipeline(self, reason: str) -> None:
        if self.call is not None:
            await self.call.worker.cancel(reason=reason)

    def listen(self, sink: Callable[[bytes], None]) -> tuple[int, Callable[[], None]] | None:
        """Listen-in: `sink` gets the call's mixed audio (mono PCM16) as the recorder commits it, about half a
        second behind. Returns (sample rate, unsubscribe), or None for a call that is not recorded."""
        if self.recording is None:
            return None
        listeners = self.recording.recorder.listeners
        listeners.append(sink)
        return self.recording.recorder.sample_rate, lambda: listeners.remove(sink) if sink in listeners else None

    def _watch_changed(self) -> None:
        """The live view started or stopped watching: the STT switches interim results on or off."""
        if self.call is not None and not self._finished_once:
            self._watch_task = asyncio.create_task(self.call.worker.queue_frames([InterimsWantedFrame()]),
                                                   name=f"interims-{self.call_id}")

    def _interim(self, text: str) -> None:
        if self.feed.watched and self.call is not None:
            self.feed.publish(LiveFeedEvent(type="interim", text=self.call.transcript.redact(text)[:4000],
                                            at_ms=self.timeline_ms()))

    async def take_over(self, caller_sink: Callable[[bytes], None]) -> Takeover | None:
        """A supervisor takes the call: the agent steps out and `caller_sink` gets the caller's audio. None when
        the call is already taken over or not running."""
        if (self.takeover is not None and self.takeover.active) or self.call is None or self.transport is None \
                or self.serializer is None or self.end_reason is not None:
            return None
        self.takeover = Takeover(self.call.gate, self.transport.output(), self.serializer, self.call.transcript,
                                 caller_sink)
        await self.takeover.begin()
        return self.takeover

    async def whisper(self, text: str) -> None:
        """A supervisor's instruction: added to the agent's context (the caller hears nothing) and to the
        transcript as a system turn."""
        if self.call is None:
            raise RuntimeError("the call's pipeline is not running")
        note = f"Supervisor instruction (the caller did not say this; follow it): {text}"
        await self.call.worker.queue_frames([LLMMessagesAppendFrame([{"role": "system", "content": note}],
                                                                    run_llm=False)])
        self.call.transcript.system(f"[supervisor] {text}")

    async def end_call(self, reason: EndReason, goodbye: str | None, detail: str = "") -> None:
        """CallControl: schedules goodbye -> wait for playback -> hang up -> end. Returns at once."""
        if self.end_reason is not None:
            return
        self.end_reason, self.end_detail = reason, detail
        self._ending_task = asyncio.create_task(self._end_flow(goodbye), name=f"end-call-{self.call_id}")

    async def _speak_and_wait(self, text: str) -> bool:
        """Says `text` (not interruptible) and waits until the carrier reports it played (mark/checkpoint).

        Two bounded waits: until the mark goes out (the text may queue behind speech still being generated),
        then until the carrier acknowledges it (it may never: Vobiz drops checkpoints on clearAudio)."""
        if self.call is None or self.serializer is None or self._hung_up:
            return False
        self.call.barge_in.disable()
        loop = asyncio.get_running_loop()
        played: asyncio.Future[bool] = loop.create_future()
        sent: asyncio.Future[float] = loop.create_future()
        speak = TTSSpeakFrame(text, append_to_context=True)
        speak.interruptible = False
        mark = PlaybackMarkFrame(mark=self.serializer.next_mark_name("end"), played=played, sent=sent)
        await self.call.worker.queue_frames([speak, mark])
        settings = self.app.settings
        try:
            remaining = await asyncio.wait_for(asyncio.shield(sent), SEND_MARK_TIMEOUT_S)
            return bool(await asyncio.wait_for(asyncio.shield(played), remaining + settings.mark_timeout_s))
        except TimeoutError:
            log.warning("call %s: no playback confirmation for %r; going on", self.call_id, mark.mark)
            return False

    async def _end_flow(self, goodbye: str | None) -> None:
        try:
            if goodbye:
                self.goodbye_played = await self._speak_and_wait(goodbye)
            await self._carrier_hangup()
        finally:
            await self._cancel_pipeline(self.end_reason or "ended")

    async def _carrier_hangup(self) -> None:
        if self._hung_up:
            return
        self._hung_up = True
        if self.browser_events is not None:  # no carrier to call: tell the browser (it closes), before the socket goes
            self.browser_events.end(self.end_reason or "agent_hangup")
            await self.browser_events.close()
            return
        stop = self.serializer.stop_message() if self.serializer is not None else None
        if stop is not None and self.transport is not None:
            # Stop the stream first so the carrier does not reconnect it after the hang-up.
            with contextlib.suppress(Exception):
                await self.transport.send_raw(stop)
        credentials = self.agent.carrier_credentials
        if credentials is None:
            log.warning("call %s: no carrier credentials, cannot hang up via REST", self.call_id)
            return
        try:
            await self.app.carriers.for_credentials(credentials).hangup(self.claims.carrier_call_id)
        except CarrierError as exc:
            log.error("call %s: hang-up failed: %s", self.call_id, exc)
            self.end_detail = (self.end_detail + f" hang-up failed: {exc}").strip()[:500]

    async def _send_digits(self, digits: str) -> bool:
        """Keypad tones to the other party by the carrier's REST API; False: send them in-band instead."""
        assert self.agent.carrier_credentials is not None
        try:
            return await self.app.carriers.for_credentials(self.agent.carrier_credentials).send_digits(
                self.claims.carrier_call_id, digits)
        except CarrierError as exc:
            log.warning("call %s: sending keypad tones failed (%s); sending them in-band", self.call_id, exc)
            return False

    async def _max_duration_watch(self) -> None:
        await asyncio.sleep(self.agent.config.max_duration_s)
        await self.end_call("max_duration", goodbye=self.agent.config.goodbye)

    async def hand_off_agent(self, agent_id: str) -> ResolvedAgent | None:
        match = await self.app.agents.find(agent_id=agent_id)
        # Only an agent of this call's organisation: the id came from a stored flow, checked when it was saved.
        if match.agent is None or match.agent.org_id != self.agent.org_id:
            return None
        return match.agent

    # -- transfers --------------------------------------------------------------------------------------------
    async def transfer(self, target: TransferTarget, announcement: str, brief: str) -> str:
        credentials = self.agent.carrier_credentials
        if credentials is None:
            return "transfers are not available on this line"
        if self.end_reason is not None:
            return "the call is already ending"
        client = self.app.carriers.for_credentials(credentials)
        our_number = self.agent.phone_number or (self.claims.to_number if self.claims.direction == "inbound"
                                                 else self.claims.from_number)
        await self._speak_and_wait(announcement)
        if self.end_reason is not None:
            return "the call is already ending"
        # Set before the API call: the carrier may end the media stream before its REST answer arrives.
        self.end_reason, self.end_detail = "transferred", f"{target.mode} transfer to {target.name}"
        carrier = CARRIERS[self.claims.carrier]
        try:
            if target.mode == "warm" and carrier.supports_warm_transfer:
                # Shielded: putting the caller on hold ends the media stream, which cancels this tool call; the
                # human's leg must still be dialled or the caller waits on hold for ever.
                await asyncio.shield(self._warm_transfer(target, brief, our_number))
            else:  # a carrier without a hold/whisper flow gets a blind transfer for warm targets too
                url = self._transfer_url(TransferClaims(call_id=self.call_id, target=target.phone_number,
                                                        caller_id=our_number or ""))
                await client.transfer_blind(self.claims.carrier_call_id, target.phone_number, our_number, url)
        except CarrierError as exc:
            log.error("call %s: transfer failed: %s", self.call_id, exc)
            self.end_reason, self.end_detail = None, ""
            if self.call is not None:
                self.call.barge_in.enable()
            return f"the transfer failed ({exc.status}); apologise and offer to help otherwise"
        self._hung_up = True  # the carrier now owns the call
        self._spawn_cancel("transferred")
        return "transferring"

    async def _warm_transfer(self, target: TransferTarget, brief: str, our_number: str | None) -> None:
        """Hold the caller in a conference, call the human with a spoken brief, and bridge when they join."""
        credentials = self.agent.carrier_credentials
        assert credentials is not None
        self.app.warm_transfers[self.call_id] = (credentials, self.claims.carrier_call_id)
        whisper = f"Incoming transfer from the AI assistant. {brief}"[:600] if target.whisper_brief and brief \
            else None
        await self.app.carriers.for_credentials(credentials).warm_transfer(self.claims.carrier_call_id, WarmTransfer(
            room=warm_room(self.call_id), human_number=target.phone_number,
            from_number=our_number or self.claims.to_number, whisper=whisper,
            status_callback_url=CARRIERS[self.claims.carrier].path(self.app.settings.voice_public_base_url,
                                                                   "warm-status", self.call_id),
            hold_url=self._transfer_url(TransferClaims(call_id=self.call_id, target="", step="hold")),
            human_url=self._transfer_url(TransferClaims(call_id=self.call_id, target=target.phone_number,
                                                        step="human", say=whisper or "")),
        ))

    def _transfer_url(self, claims: TransferClaims) -> str:
        return transfer_url(self.app.settings.call_token_secret.get_secret_value(),
                            self.app.settings.voice_public_base_url, CARRIERS[self.claims.carrier], claims)

    # -- the end ----------------------------------------------------------------------------------------------
    async def _finish(self) -> None:
        if self._finished_once:
            return
        self._finished_once = True
        if self._max_task is not None:
            self._max_task.cancel()
        end_s = self.tracker.now_s()
        self.tracker.close()
        reason: EndReason = self.end_reason or "caller_hangup"
        usage = self.call.latency.final_usage() if self.call is not None else None
        ended = CallEnded(
            event_id=f"{self.call_id}-ended"[:64], call_id=self.call_id, end_reason=reason,
            duration_s=round(end_s, 3), detail=self.end_detail[:1000],
        )
        if usage is not None:
            ended.usage = usage
        ended.usage.agent_audio_s = round(self.tracker.agent_audio_s, 3)
        if self.serializer is not None:
            ended.usage.caller_audio_s = round(self.serializer.caller_audio_s, 3)
        self.app.outbox.emit(ended)
        if self.call is not None:
            self.app.calls.remember_latency(self.call_id, self.claims.carrier_call_id, self.call.latency.completed,
                                      self.tracker)
        if self.recording is not None:
            await self.recording.finish(end_s)
        self.app.calls.ended(self, reason)
        self.app.metrics.call_ended(self.info.carrier, reason)
        if self.call is not None and self.call.speculation is not None:
            self.app.metrics.speculations(self.call.speculation.speculations, self.call.speculation.speculation_hits)
        if self.call is not None and isinstance(self.call.llm, FallbackLLMService):
            self.app.metrics.prefills(self.call.llm.prefills)
        if self.browser_events is not None:
            await self.browser_events.close()
        self.feed.close()
        self.finished.set()
        first = self.tracker.first_audio_s
        log.info("call %s ended: %s %s (first agent audio at %s ms)", self.call_id, reason, self.end_detail,
                 round(first * 1000) if first is not None else None)
