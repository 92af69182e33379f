"""The voice server's one settings object (environment, then .env, then voicectl's generated dev defaults)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from core.call_events import VOICE_SERVER_ID_PATTERN
from core.egress import EgressSettings
from core.knowledge.settings import KnowledgeSettings
from core.service_auth import NO_KEY
from core.settings import state_dir, weak_secrets


class VoiceServerSettings(KnowledgeSettings, EgressSettings):  # S3 + the knowledge store and embeddings endpoint
    # Where carriers reach us. Signatures are checked against this URL (never the internal one behind a proxy)
    # and the media WebSocket URLs handed to carriers are derived from it (https -> wss).
    voice_public_base_url: str = "http://127.0.0.1:8100"
    voice_server_id: str = Field(default="voice-1", pattern=VOICE_SERVER_ID_PATTERN,
                                 description="Names this replica in call events and call leases.")

    backend_url: str = "http://127.0.0.1:8000"
    service_token_secret: SecretStr = SecretStr("")
    # HMAC key for the short-lived call tokens carried from the answer webhook to the media socket.
    call_token_secret: SecretStr = SecretStr("")
    call_token_ttl_s: int = Field(default=120, ge=10, le=3600)

    # Platform-default AI endpoints (an agent's own EndpointOptions override them).
    riva_server: str = "127.0.0.1:50051"
    # The ASR model asked of RIVA_SERVER when an agent names none. Empty: the server is asked which models it serves
    # (GetRivaSpeechRecognitionConfig) and a streaming one for the agent's language is used.
    stt_model: str = ""
    tts_url: str = "http://127.0.0.1:8200"
    llm_base_url: str = "http://127.0.0.1:8300/v1"
    llm_model: str = "smollm2-135m-instruct"
    llm_api_key: SecretStr = SecretStr("none")
    # After the greeting is synthesised, send the agent's prompt prefix to the LLM once so the first answer
    # reuses the server's prompt cache.
    llm_warmup: bool = True
    # After each agent turn, evaluate the next turn's prompt up to the caller's words while the agent speaks
    # (pipelines/llm_chain.py): the LLM's first token 158 -> 121 ms at p50 on SmolLM2 in calls. Only ever sent
    # to LLM_BASE_URL. Unset: on for the embedded LLM server (no LLM_API_KEY), off for a keyed API, where every
    # prefill is a billed prompt.
    llm_prefill_next_turn: bool | None = None

    # Local disk for recordings in progress, recordings waiting for MinIO, and the event outbox.
    voice_spool_dir: Path | None = None

    # Vobiz: refuse unsigned webhooks (Vobiz signs when the account has callback credentials: set them up). false is
    # for local development only and is logged loudly at start; it never lets a number of another carrier, or one
    # without credentials, through.
    vobiz_require_signature: bool = True
    vobiz_signature_max_nonces: int = 10000
    # Inbound format we ask Vobiz for; decoding still follows start.mediaFormat on the socket.
    vobiz_content_type: Literal["audio/x-mulaw;rate=8000", "audio/x-l16;rate=8000", "audio/x-l16;rate=16000"] = (
        "audio/x-mulaw;rate=8000"
    )
    # Inbound L16 byte order. The reference (A2) says Vobiz sends network byte order (big-endian); outbound
    # playAudio L16 is little-endian. Flip this after checking a live call if your account differs.
    vobiz_inbound_l16_byte_order: Literal["big", "little"] = "big"
    vobiz_default_region: str = "IN"  # for numbers Vobiz delivers in national form (leading 0)

    # Playback pacing: how far ahead of the carrier's playhead we let audio run. Small keeps barge-in tight
    # and the recording exact; big rides out network jitter.
    # 100 ms: a busy event loop (15+ calls on a core) stalls for tens of ms at times; 60 ms of lead let those
    # stalls run the carrier dry (82 underruns at 15 calls vs 3 with 120 ms), and barge-in still goes quiet
    # within a tenth of a second.
    playout_lead_ms: int = Field(default=100, ge=20, le=2000)
    # 40 ms frames both ways: every frame costs each processor a queue, a task switch and observer events, so
    # halving the frames cut the server's CPU per call (A/B in BENCHMARKS.md, "Voice server: 40 ms frames").
    # Agent audio goes to the carrier in media messages this long (carriers play any length)...
    audio_chunk_ms: int = Field(default=40, ge=20, le=100)
    # ...and caller audio (carriers send 20 ms) enters the pipeline in frames this long: VAD and barge-in then
    # resolve to this step. 60 ms was tried: no clear CPU win in two A/Bs and voice-to-voice 32 ms slower at p50
    # (BENCHMARKS.md, "Voice server: caller audio ends in the user aggregator, 60 ms caller frames").
    caller_frame_ms: int = Field(default=40, ge=20, le=100)
    # Who times each agent frame: one timer for the whole process, ticking every quarter chunk and waking all
    # calls whose frame is due (voice_server/media/pacer.py), or a sleep per frame in each call (BENCHMARKS.md, "Voice
    # server: one output timer for all calls").
    output_pacer: Literal["shared", "per_call"] = "shared"
    # On: with the cores quiet it cut the server's CPU per audio-second 12-18 % below 40 ms frames alone and held 15
    # calls with 1-3 underruns where 40 ms frames alone had 6-165 (BENCHMARKS.md, issue 21 A/B).
    observers_skip_audio: bool = Field(
        default=True, description="Audio frames reach the pipeline's observers only around a turn end "
                                   "(pipelines/call_worker.py); false: every frame at every hop, as Pipecat does")
    # Diagnosis only: while the event loop is late by more than this, sample its stack (voice_server/stall_watch.py)
    # and count the samples by stack in /metrics (voice_loop_stall_samples_total). 0: off.
    loop_stall_trace_ms: int = Field(default=0, ge=0, le=10_000)
    mark_timeout_s: float = Field(default=3.0, gt=0, le=30, description="Extra wait for a playback mark echo.")
    media_start_timeout_s: float = Field(default=10.0, gt=0, le=60)

    # Turn detection.
    vad_stop_secs: float = Field(default=0.2, ge=0.05, le=2.0)
    vad_start_secs: float = Field(default=0.15, ge=0.05, le=1.0)
    # Pipecat's loudness gate (default 0.6) lags speech onset by ~0.5 s on phone audio; 0 turns it off and
    # leaves the decision to Silero's confidence.
    vad_min_volume: float = Field(default=0.0, ge=0.0, le=1.0)
    vad_energy_gate_dbfs: float = Field(
        default=-55.0, ge=-96.0, le=-20.0,
        description="32 ms windows quieter than this (RMS) skip Silero and count as silence (-96: only digital silence)")
    # On, with MODEL_THREAD_NICE: 25 calls on one core with 0 underruns where both off had 730 (BENCHMARKS.md, "Voice
    # server: what stalls the event loop"). On one core a thread per VAD window only adds hand-offs: ~12 % less CPU.
    vad_on_loop: bool = Field(default=True, description="Run the VAD on the event loop instead of handing every "
                              "caller frame to a thread (pipelines/shared_models.py)")
    # smart-turn takes 50-80 ms of CPU per turn end in its thread; at normal priority the scheduler shares the core
    # with the event loop for that long, and every call's audio falls behind (the stalls that ran carriers dry).
    model_thread_nice: int = Field(default=19, ge=0, le=19, description="Niceness of the VAD and smart-turn "
                                   "threads: above 0 they take the core only when the event loop leaves it idle")
    stt_final_wait_s: float = Field(default=0.6, ge=0.05, le=5.0, description="Wait for a final transcript.")
    stt_endpoint_silence_ms: int = Field(default=300, ge=100, le=3000, description="ASR end-of-utterance silence")
    # Off by default: no faster on the embedded stack (the speculative decode, not the endpoint, sets when the final
    # comes), and the fresh stream can catch the tail of a word that Whisper then hallucinates on (BENCHMARKS.md).
    stt_finalize_on_vad_stop: bool = Field(
        default=False, description="Half-close the ASR stream when the VAD hears the caller stop: the final comes "
                                   "at once instead of after the ASR's own endpointing silence.")
    stt_interims: Literal["always", "while_agent_speaks"] = Field(
        default="while_agent_speaks",
        description="Interim transcripts feed barge-in while the agent talks; at other times each is a decode that "
                    "competes with the final's.")
    smart_turn_enabled: bool = True
    # On by default: the ASR's pause transcript comes up to ~70 ms before its final on 2 CPU cores, and the reply
    # starts on it (and on the final while smart-turn or the text fallback still decide); the LLM's first token
    # after the turn end fell 135 -> 105 and 211 -> 149 ms at p50 (BENCHMARKS.md "Voice-to-voice: the slow first
    # tokens and a reply started on the pause transcript"). Nothing is said before the turn end is confirmed.
    speculative_llm: bool = Field(default=True, description="Start the reply on the ASR's pause or final transcript "
                                                            "before the turn end; release it only if the turn ends "
                                                            "with the same words.")
    # Off by default: on 2 cores the earlier start took CPU from the ASR's final decode and smart-turn, which are on
    # the turn's critical path: voice-to-voice p50 908 against 862 ms (BENCHMARKS.md "Voice-to-voice: the reply
    # started as the pause transcript arrives"). Where the LLM has cores of its own, nothing else pays for the
    # earlier start; not measured here.
    speculate_at_pause: bool = Field(
        default=False, description="With SPECULATIVE_LLM: start the reply when the ASR's pause transcript arrives "
                                   "(the ASR server has heard the caller pause), not only once the VAD hears them "
                                   "stop.")
    # On by default: it moves 0-25 % of finished questions on other voices off the 2 s wait, at the risk of cutting
    # off a further 0-8 % of mid-sentence pauses longer than this (BENCHMARKS.md "Turn end on caller voices").
    turn_text_fallback_s: float = Field(
        default=0.8, ge=0.0, le=2.0,
        description="When smart-turn calls a caller unfinished but the final transcript reads as a finished "
                    "sentence, end the turn this long after the speech instead of on smart-turn's 2 s fallback "
                    "(pipelines/turn_end.py); 0 = off.")
    # On by default: smart-turn's wrong "incomplete" on a finished question is mostly a near miss (0.2-0.5) and the
    # fragments it holds mostly sure (< 0.1) on the voices measured (BENCHMARKS.md "Turn end on caller voices").
    turn_unsure_probability: float = Field(
        default=0.2, ge=0.0, lt=0.5,
        description="smart-turn's \"incomplete\" with at least this probability of complete counts as unsure: the "
                    "turn ends TURN_TEXT_FALLBACK_S after the speech, as when the transcript reads complete; 0 = off.")
    # 3, not 6: the first audio comes ~160 ms sooner on the embedded stack (SmolLM2 writes fewer words and Piper
    # speaks fewer before the caller hears anything); the next chunk is ready before these words have been played
    # (BENCHMARKS.md "Voice-to-voice: first words sooner").
    tts_first_chunk_max_words: int = Field(default=3, ge=2, le=30, description="Words before the first TTS chunk.")

    # Degradation chains (pipelines/resilience.py): one circuit breaker per STT/LLM/TTS endpoint, process-wide.
    # It opens after this many consecutive failures, or this failure rate over the last `window` attempts...
    breaker_failure_threshold: int = Field(default=3, ge=1, le=100)
    breaker_failure_rate: float = Field(default=0.5, gt=0, le=1)
    breaker_window: int = Field(default=10, ge=2, le=1000)
    # ...and lets one trial request through after this cool-down (half-open).
    breaker_cooldown_s: float = Field(default=30.0, gt=0, le=3600)
    # Pre-recorded prompts (degradation messages, canned replies) played when no TTS endpoint answers;
    # synthesised once by the platform TTS. Empty: <state dir>/prompt-clips.
    prompt_clip_dir: Path | None = None

    # Local read replicas of the knowledge tables calls use (core/knowledge/replicas.py), when KNOWLEDGE_URI is in
    # S3/MinIO: per-turn retrieval reads local files. Empty dir: <state dir>/knowledge-replicas; 0 MB: no replicas
    # (every turn reads the object store).
    knowledge_replica_dir: Path | None = None
    knowledge_replica_max_mb: int = Field(default=1024, ge=0, le=1_000_000)
    # Callers' questions embedded in this process (int8 ONNX, speech/embed/in_process.py) when EMBEDDINGS_MODEL is
    # the bundled all-MiniLM-L6-v2: no HTTP hop per turn. Off: every question goes to EMBEDDINGS_BASE_URL. Set it
    # off if that endpoint serves another checkpoint under the same name. The built graph is cached in
    # <state dir>/embed-cache (KNOWLEDGE_QUERY_EMBED_CACHE_DIR).
    knowledge_query_embed_local: bool = True
    knowledge_query_embed_cache_dir: Path | None = None

    # Delivery to the backend.
    event_retry_max_s: float = 30.0
    recording_retry_max_s: float = 300.0

    # Admission control (voice_server/admission.py): calls this replica takes at once (live plus answered and not
    # yet connected). Beyond it, answer webhooks get the carrier's busy answer and /ready turns 503. Size it from
    # bench/voice_concurrency.py on the replica's CPU.
    max_concurrent_calls: int = Field(default=100, ge=1, le=10000)

    # Bearer token for /metrics; empty: only scrapers on this host (loopback, not through a proxy) may read it.
    metrics_token: SecretStr = SecretStr("")

    # Graceful drain (SIGTERM or POST /internal/v1/drain): the longest live calls may keep the process up. Keep
    # Kubernetes' terminationGracePeriodSeconds above this (deploy/k8s).
    voice_drain_max_s: float = Field(default=600.0, ge=0, le=86400)
    # Call lease (backend/services/call_leases.py): beat this often; the backend ends our calls with
    # `voice_server_lost` when no beat came for voice_call_lease_s.
    voice_heartbeat_interval_s: float = Field(default=5.0, gt=0, le=300)
    voice_call_lease_s: float = Field(default=30.0, ge=1, le=3600)

    @field_validator("voice_public_base_url", "backend_url", "tts_url", "llm_base_url")
    @classmethod
    def _no_trailing_slash(cls, v: str) -> str:
        return v.rstrip("/")

    @property
    def production(self) -> bool:
        """Carriers reach this replica over https: a public deployment."""
        return self.voice_public_base_url.startswith("https://")

    def weak_secrets(self) -> list[str]:
        """Secrets unfit to start with: in production both must be 32+ random bytes."""
        if not self.production:
            return []
        return weak_secrets({"SERVICE_TOKEN_SECRET": self.service_token_secret,
                             "CALL_TOKEN_SECRET": self.call_token_secret}, strong=True)

    def llm_prefill(self) -> bool:
        if self.llm_prefill_next_turn is not None:
            return self.llm_prefill_next_turn
        return self.llm_api_key.get_secret_value() in ("", NO_KEY)

    @property
    def prompt_clips_dir(self) -> Path:
        return (self.prompt_clip_dir or state_dir() / "prompt-clips").resolve()

    @property
    def knowledge_replicas_path(self) -> Path:
        """This replica's own folder (several voice servers may share a state dir)."""
        return (self.knowledge_replica_dir or state_dir() / "knowledge-replicas").resolve() / self.voice_server_id

    @property
    def query_embed_cache_path(self) -> Path:
        return (self.knowledge_query_embed_cache_dir or state_dir() / "embed-cache").resolve()

    @property
    def spool_dir(self) -> Path:
        return (self.voice_spool_dir or state_dir() / "voice-spool").resolve()

    @property
    def public_ws_base_url(self) -> str:
        base = self.voice_public_base_url
        if base.startswith("https://"):
            return "wss://" + base[len("https://"):]
        if base.startswith("http://"):
            return "ws://" + base[len("http://"):]
        return base


@lru_cache
def get_settings() -> VoiceServerSettings:
    return VoiceServerSettings()
