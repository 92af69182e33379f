"""Everything the voice server creates once per process (clients, models, the outbox, the call registry), and its
start-up and shut-down order. Per-call logic lives in session.py; what calls are live lives in call_registry.py."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import httpx

from core.egress import guarded_client
from core.knowledge.embeddings import EmbeddingsClient
from core.knowledge.retriever import Retriever
from core.knowledge.store import KnowledgeStore
from core.service_auth import ServiceTokenSource
from core.storage import ObjectStore
from pipelines.degradation import PromptClips, degradation_texts
from pipelines.factory import CallServices
from pipelines.llm import OpenAIClientPool
from pipelines.resilience import BreakerSettings, configure_breakers
from pipelines.shared_models import SharedModels
from pipelines.speech import SpeechFactory
from speech.embed.in_process import bundled_query_embedder
from telephony.base import NonceCache
from telephony.registry import CarrierClients
from voice_server.agent_lookup import AgentLookup
from voice_server.backend_client import BackendClient
from voice_server.call_registry import CallRegistry
from voice_server.config import VoiceServerSettings
from voice_server.lifecycle import CallLeaseHeartbeat, Drain
from voice_server.media.pacer import SharedPacer
from voice_server.metrics import VoiceMetrics
from voice_server.outbox import EventOutbox
from voice_server.prepared import PreparedCalls
from voice_server.recording import DiskWriter, RecordingUploader
from voice_server.stall_watch import StallWatch
from voice_server.warmup import warm_up_pipeline

log = logging.getLogger(__name__)


class VoiceApp:
    def __init__(self, settings: VoiceServerSettings) -> None:
        self.settings = settings
        self.http = httpx.AsyncClient(timeout=10.0, limits=httpx.Limits(max_connections=500))
        service_secret = settings.service_token_secret.get_secret_value()
        tokens = ServiceTokenSource(service_secret, "voice-server")  # the backend's and speech servers' credential
        self.backend = BackendClient(settings.backend_url, tokens, self.http)
        self.outbox = EventOutbox(settings.spool_dir / "outbox", self.backend.post_events,
                                  retry_max_s=settings.event_retry_max_s)
        self.store = ObjectStore(settings)
        self.writer = DiskWriter()
        self.uploader = RecordingUploader(self.store, settings.spool_dir, self.outbox.emit,
                                          retry_max_s=settings.recording_retry_max_s)
        self.carriers = CarrierClients()
        models = SharedModels(smart_turn=settings.smart_turn_enabled,
                              vad_gate_dbfs=settings.vad_energy_gate_dbfs, vad_on_loop=settings.vad_on_loop,
                              thread_nice=settings.model_thread_nice)
        egress = settings.egress_policy()
        self.tenant_http = guarded_client(egress, timeout=10.0)  # tenants' URLs only through the egress guard
        self.llm_pool = OpenAIClientPool(settings.llm_base_url, settings.llm_api_key.get_secret_value(), egress,
                                         service_tokens=tokens if service_secret else None)
        speech = SpeechFactory(riva_server=settings.riva_server, tts_url=settings.tts_url, http=self.http,
                                    stt_final_wait_s=settings.stt_final_wait_s,
                                    stt_endpoint_silence_ms=settings.stt_endpoint_silence_ms,
                                    stt_finalize_on_vad_stop=settings.stt_finalize_on_vad_stop,
                                    stt_interims=settings.stt_interims,
                                    stt_model=settings.stt_model,
                                    first_chunk_max_words=settings.tts_first_chunk_max_words,
                                    service_secret=service_secret)
        embeddings = EmbeddingsClient(self.http, settings.embeddings_base_url, settings.embeddings_model,
                                      lambda: tokens.platform_key(settings.embeddings_key()),
                                      # a slow endpoint must not hold up the answer: retrieval is skipped instead
                                      timeout_s=min(settings.embeddings_timeout_s, 2.0))
        self.query_embedder = (bundled_query_embedder(settings.embeddings_model, settings.query_embed_cache_path,
                                                      embeddings) if settings.knowledge_query_embed_local else None)
        self.call_services = CallServices(
            models=models, llm_pool=self.llm_pool, speech=speech, http=self.http,
            llm_base_url=settings.llm_base_url, llm_model=settings.llm_model,
            tenant_http=self.tenant_http, egress=egress,
            vad_start_secs=settings.vad_start_secs, vad_stop_secs=settings.vad_stop_secs,
            vad_min_volume=settings.vad_min_volume,
            smart_turn=settings.smart_turn_enabled,
            speculative_llm=settings.speculative_llm, speculate_at_pause=settings.speculate_at_pause,
            llm_prefill=settings.llm_prefill(),
            turn_text_fallback_s=settings.turn_text_fallback_s,
            turn_unsure_probability=settings.turn_unsure_probability,
            observers_skip_audio=settings.observers_skip_audio,
            breakers=configure_breakers(BreakerSettings(
                failure_threshold=settings.breaker_failure_threshold, failure_rate=settings.breaker_failure_rate,
                window=settings.breaker_window, cooldown_s=settings.breaker_cooldown_s)),
            clips=PromptClips(settings.prompt_clips_dir, settings.tts_url, self.http,
                              auth_headers=speech.platform_headers()),
            retriever=Retriever(
                self.query_embedder or embeddings,
                KnowledgeStore(*settings.knowledge_location(), replica_dir=settings.knowledge_replicas_path,
                               replica_max_bytes=settings.knowledge_replica_max_mb * 1024 * 1024)),
        )
        self.prepared = PreparedCalls()
        self.nonces = NonceCache(max_entries=settings.vobiz_signature_max_nonces)
        self.agents = AgentLookup(self.backend)
        self.calls = CallRegistry(self.agents)
        self.warm_transfers = self.calls.warm_transfers  # a session's narrow view (session.py SessionDeps)
        self.metrics = VoiceMetrics(active_calls=lambda: len(self.calls))
        self.stall_watch = (StallWatch(settings.loop_stall_trace_ms / 1000,
                                       lambda stack: self.metrics.stall_samples.labels(stack).inc())
                            if settings.loop_stall_trace_ms else None)
        self.pacer = SharedPacer(settings.audio_chunk_ms / 4000) if settings.output_pacer == "shared" else None
        self.accepting = True
        self.ready = False  # /ready: started, and not draining
        self.drain = Drain(self)
        self.heartbeat = CallLeaseHeartbeat(self)

    async def start(self) -> None:
        # Calls push blocking work (gRPC STT stream readers, MinIO, disk) to threads; the default pool of
        # cpu+4 threads would stall the fifth concurrent call's STT.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=512,
                                                                           thread_name_prefix="voice"))
        self.metrics.start_loop_probe()
        if self.stall_watch is not None:
            self.stall_watch.start()
        if self.query_embedder is not None:
            self.query_embedder.start()
        await asyncio.to_thread(self.call_services.models.warm_up)
        if self.call_services.clips is not None:  # the default agent's prompts, recorded in the background
            from core.agent_config import AgentConfig

            self.call_services.clips.ensure(degradation_texts(AgentConfig()))
        warm_up_pipeline(self.call_services)
        await self.outbox.start()
        await self.uploader.start(lambda: set(self.calls.ids()))
        self.heartbeat.start()
        self.ready = True

    async def stop(self) -> None:
        self.accepting = False
        self.ready = False
        await self.drain.stop()
        await self.heartbeat.stop()
        for call in self.calls:
            call.carrier_ended("voice server shutting down")
        sessions = [call.finished.wait() for call in self.calls]
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
        self.call_services.models.close()
        await self.metrics.stop_loop_probe()
        if self.stall_watch is not None:
            await self.stall_watch.stop()
