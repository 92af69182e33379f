"""Everything the voice server creates once per process, and the registry of live calls."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from core.call_events import CarrierCredentials, ResolvedAgent
from core.egress import guarded_client
from core.service_auth import ServiceTokenSource
from core.storage import ObjectStore
from pipelines.degradation import PromptClips, degradation_texts
from pipelines.factory import CallServices
from pipelines.llm import OpenAIClientPool
from pipelines.models import SharedModels
from pipelines.observers import TurnTiming
from pipelines.resilience import BreakerSettings, configure_breakers
from pipelines.speech import SpeechFactory
from voice_server.backend_client import BackendClient, BackendRejected, BackendUnavailable
from voice_server.carriers import CarrierClients
from voice_server.config import VoiceServerSettings
from voice_server.lifecycle import CallLeaseHeartbeat, Drain
from voice_server.media.playout import PlayoutTracker
from voice_server.metrics import VoiceMetrics
from voice_server.outbox import EventOutbox
from voice_server.prepared import PreparedCalls
from voice_server.recording import DiskWriter, RecordingUploader
from voice_server.signatures import NonceCache

if TYPE_CHECKING:
    from voice_server.session import CallSession

log = logging.getLogger(__name__)

LATENCY_LOG_CALLS = 500


@dataclass
class CallLatency:
    call_id: str
    carrier_call_id: str
    t0_monotonic: float
    turns: list[dict[str, Any]] = field(default_factory=list)
    marks_played: int = 0
    clears: int = 0
    agent_audio_s: float = 0.0


class VoiceApp:
    def __init__(self, settings: VoiceServerSettings) -> None:
        self.settings = settings
        self.http = httpx.AsyncClient(timeout=10.0, limits=httpx.Limits(max_connections=500))
        self.backend = BackendClient(
            settings.backend_url,
            ServiceTokenSource(settings.service_token_secret.get_secret_value(), "voice-server"),
            self.http,
        )
        self.outbox = EventOutbox(settings.spool_dir / "outbox", self.backend.post_events,
                                  retry_max_s=settings.event_retry_max_s)
        self.store = ObjectStore(settings)
        self.writer = DiskWriter()
        self.uploader = RecordingUploader(self.store, settings.spool_dir, self.outbox.emit,
                                          retry_max_s=settings.recording_retry_max_s)
        self.carriers = CarrierClients()
        self.models = SharedModels(smart_turn=settings.smart_turn_enabled,
                                   vad_gate_dbfs=settings.vad_energy_gate_dbfs)
        egress = settings.egress_policy()
        self.tenant_http = guarded_client(egress, timeout=10.0)
        self.llm_pool = OpenAIClientPool(settings.llm_base_url, settings.llm_api_key.get_secret_value(), egress)
        self.speech = SpeechFactory(riva_server=settings.riva_server, tts_url=settings.tts_url, http=self.http,
                                    stt_final_wait_s=settings.stt_final_wait_s,
                                    stt_endpoint_silence_ms=settings.stt_endpoint_silence_ms,
                                    stt_finalize_on_vad_stop=settings.stt_finalize_on_vad_stop,
                                    stt_interims=settings.stt_interims,
                                    first_chunk_max_words=settings.tts_first_chunk_max_words)
        self.call_services = CallServices(
            models=self.models, llm_pool=self.llm_pool, speech=self.speech, http=self.http,
            llm_base_url=settings.llm_base_url, llm_model=settings.llm_model,
            tenant_http=self.tenant_http, egress=egress,
            vad_start_secs=settings.vad_start_secs, vad_stop_secs=settings.vad_stop_secs,
            vad_min_volume=settings.vad_min_volume,
            smart_turn=settings.smart_turn_enabled,
            speculative_llm=settings.speculative_llm,
            breakers=configure_breakers(BreakerSettings(
                failure_threshold=settings.breaker_failure_threshold, failure_rate=settings.breaker_failure_rate,
                window=settings.breaker_window, cooldown_s=settings.breaker_cooldown_s)),
            clips=PromptClips(settings.prompt_clips_dir, settings.tts_url, self.http),
        )
        self.prepared = PreparedCalls()
        self.nonces = NonceCache(max_entries=settings.vobiz_signature_max_nonces)
        self.sessions: dict[str, CallSession] = {}
        self.metrics = VoiceMetrics(active_calls=lambda: len(self.sessions))
        self.ended_calls: OrderedDict[str, str] = OrderedDict()  # call_id -> end reason (refuse phantom reconnects)
        self.latency_log: OrderedDict[str, CallLatency] = OrderedDict()
        self.latency_by_carrier_id: dict[str, str] = {}
        self.accepting = True
        self.ready = False  # /ready: started, and not draining
        # Carrier credentials of recent calls, for authenticating their status callbacks without a lookup.
        self.call_credentials: OrderedDict[str, CarrierCredentials] = OrderedDict()
        # Twilio warm transfers waiting for the human: call_id -> (credentials, caller's CallSid).
        self.warm_transfers: dict[str, tuple[CarrierCredentials, str]] = {}
        self.drain = Drain(self)
        self.heartbeat = CallLeaseHeartbeat(self)

    async def start(self) -> None:
        # Calls push blocking work (gRPC STT stream readers, MinIO, disk) to threads; the default pool of
        # cpu+4 threads would stall the fifth concurrent call's STT.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=512,
                                                                           thread_name_prefix="voice"))
        self.metrics.start_loop_probe()
        await asyncio.to_thread(self.models.warm_up)
        if self.call_services.clips is not None:  # the default agent's prompts, recorded in the background
            from core.agent_config import AgentConfig

            self.call_services.clips.ensure(degradation_texts(AgentConfig()))
        self._warm_up_pipeline()
        await self.outbox.start()
        await self.uploader.start(lambda: set(self.sessions))
        self.heartbeat.start()
        self.ready = True

    async def stop(self) -> None:
        self.accepting = False
        self.ready = False
        await self.drain.stop()
        await self.heartbeat.stop()
        for session in list(self.sessions.values()):
            session.carrier_ended("voice server shutting down")
        sessions = [s.finished.wait() for s in self.sessions.values()]
        if sessions:
            await asyncio.wait_for(asyncio.gather(*sessions, return_exceptions=True), 10)
        self.prepared.close()
        await self.uploader.flush(5.0)
        await self.uploader.stop()
        await self.outbox.stop()
        await self.carriers.close()
        await self.llm_pool.close()
        await self.http.aclose()
        await self.tenant_http.aclose()
        self.writer.close()
        self.models.close()
        await self.metrics.stop_loop_probe()

    def _warm_up_pipeline(self) -> None:
        """Builds (and throws away) one call pipeline, so the first real call does not pay for Pipecat's lazy
        imports (about 200 ms on 2 cores)."""
        from types import SimpleNamespace

        from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams

        from core.agent_config import AgentConfig
        from pipelines.factory import CallSpec, build_call_pipeline
        from voice_server.media.transport import CarrierTransport

        class _Quiet:
            async def end_call(self, *args: Any, **kwargs: Any) -> None:
                return None

            async def transfer(self, *args: Any, **kwargs: Any) -> str:
                return ""

            def turn(self, event: Any) -> None:
                return None

            def tool(self, event: Any) -> None:
                return None

            def degraded(self, event: Any) -> None:
                return None

            def timeline_ms(self, monotonic_s: float | None = None) -> int:
                return 0

        try:
            ws: Any = SimpleNamespace(headers={}, client_state=None, application_state=None)
            params = FastAPIWebsocketParams(audio_in_enabled=True, audio_out_enabled=True, allowed_origins=[])
            transport = CarrierTransport(ws, params, PlayoutTracker(), lead_s=0.1)
            quiet = _Quiet()
            build_call_pipeline(transport, CallSpec(call_id="warm-up", agent=AgentConfig()), self.call_services,
                                control=quiet, events=quiet)
        except Exception as exc:  # only an optimisation
            log.warning("pipeline warm-up failed: %s", exc)

    async def warm_llm(self, agent: ResolvedAgent, system_prompt: str, greeting: str) -> None:
        cfg = agent.config.llm
        client = self.llm_pool.for_endpoint(cfg.endpoint.base_url or self.settings.llm_base_url,
                                            cfg.endpoint.timeout_s)
        messages: list[dict[str, str]] = [{"role": "system", "content": system_prompt}]
        if greeting:
            messages.append({"role": "assistant", "content": greeting})
        try:
            await client.chat.completions.create(
                model=cfg.endpoint.model or self.settings.llm_model,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=1, temperature=0,
            )
        except Exception as exc:  # only an optimisation
            log.debug("LLM warm-up failed: %s", exc)

    def remember_credentials(self, call_id: str, creds: CarrierCredentials | None) -> None:
        if creds is None:
            return
        self.call_credentials[call_id] = creds
        while len(self.call_credentials) > 5000:
            self.call_credentials.popitem(last=False)

    async def credentials_for(self, call_id: str, carrier_call_id: str, carrier: str, to_number: str,
                              from_number: str) -> CarrierCredentials | None:
        """The account credentials a callback about this call must be signed with."""
        session = self.sessions.get(call_id)
        if session is not None:
            return session.agent.carrier_credentials
        if call_id in self.call_credentials:
            return self.call_credentials[call_id]
        try:
            ctx = await self.backend.outbound_context(call_id)
            if ctx is not None:
                return ctx.agent.carrier_credentials
            for number in (to_number, from_number):
                agent = await self.backend.agent_by_number(number) if number else None
                if agent is not None and agent.carrier_credentials is not None \
                        and agent.carrier_credentials.carrier == carrier:
                    return agent.carrier_credentials
        except (BackendUnavailable, BackendRejected) as exc:
            log.warning("cannot look up credentials for call %s: %s", call_id, exc)
        return None

    # -- live calls -------------------------------------------------------------------------------------------
    def session_started(self, session: CallSession) -> None:
        self.sessions[session.call_id] = session

    def session_ended(self, session: CallSession) -> None:
        if self.sessions.get(session.call_id) is session:
            del self.sessions[session.call_id]
        self.metrics.call_ended(session.info.carrier, session.end_reason or "caller_hangup")
        # A socket that simply closed may come back (Vobiz maxRetries): that call may reconnect, without a
        # second greeting. A call we ended (hang-up, transfer, error) must not (reference C7, phantom reconnect).
        self.ended_calls[session.call_id] = session.end_reason or "caller_hangup"
        while len(self.ended_calls) > 5000:
            self.ended_calls.popitem(last=False)

    def may_reconnect(self, call_id: str) -> bool | None:
        """None: never seen here; True: seen, and its stream only dropped; False: we ended that call."""
        reason = self.ended_calls.get(call_id)
        if reason is None:
            return None
        return reason == "caller_hangup"

    def remember_latency(self, call_id: str, carrier_call_id: str, turns: list[TurnTiming],
                         tracker: PlayoutTracker) -> None:
        entry = CallLatency(call_id=call_id, carrier_call_id=carrier_call_id, t0_monotonic=tracker.t0, marks_played=tracker.marks_played,
                            clears=tracker.clears, agent_audio_s=tracker.agent_audio_s)
        for timing in turns:
            entry.turns.append({"stages": timing.stages(), "latency": timing.latency().model_dump(),
                                "smart_turn_ms": timing.smart_turn_ms})
        self.latency_log[call_id] = entry
        self.latency_by_carrier_id[carrier_call_id] = call_id
        while len(self.latency_log) > LATENCY_LOG_CALLS:
            old = self.latency_log.popitem(last=False)[1]
            self.latency_by_carrier_id.pop(old.carrier_call_id, None)
