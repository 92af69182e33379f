"""Speech-to-text for a call: Pipecat's own `NvidiaSTTService` (Riva gRPC), pointed at the speech.asr server.

The service is used unchanged; only the connection and recognition settings are ours.
"""

from __future__ import annotations

from typing import Any

from pipecat.services.nvidia.stt import NvidiaSTTService
from pipecat.transcriptions.language import Language

from core.agent_config import STTConfig

# Silence that closes an utterance on the ASR server. Turn-taking is Pipecat's job (VAD + smart-turn), so the
# server only needs to hand over a final soon after the caller stops: 250 ms, with the server's speculative decode
# starting at the first ~100 ms pause. Longer pauses inside a sentence then give two finals, which Pipecat's user
# aggregator joins into one turn.
DEFAULT_ENDPOINT_SILENCE_MS = 250


def _language(code: str) -> Language | str:
    try:
        return Language(code)
    except ValueError:
        return code


def create_stt_service(
    config: STTConfig | None = None,
    *,
    default_server: str,
    sample_rate: int | None = None,
    endpoint_silence_ms: int = DEFAULT_ENDPOINT_SILENCE_MS,
    interim_results: bool = True,
    use_ssl: bool = False,
    api_key: str | None = None,
    ttfs_p99_latency: float | None = None,
    service_class: type[NvidiaSTTService] = NvidiaSTTService,
    **service_kwargs: Any,
) -> NvidiaSTTService:
    """A streaming Riva STT client.

    Args:
        config: the agent's STT config (endpoint override, language, boosted words).
        default_server: host:port of the platform's Riva ASR (RIVA_SERVER).
        sample_rate: audio rate sent to the server, 8000 or 16000; None: the pipeline's input rate.
        endpoint_silence_ms: silence that ends an utterance (Riva's endpointing stop_history).
        ttfs_p99_latency: seconds from end of speech to the final transcript that Pipecat waits for
            (None: Pipecat's default for NVIDIA).
        service_class, service_kwargs: a subclass and its extra arguments (the fallback chain, stt_chain.py).
    """
    config = config or STTConfig()
    extra: dict[str, Any] = {} if ttfs_p99_latency is None else {"ttfs_p99_latency": ttfs_p99_latency}
    extra.update(service_kwargs)
    return service_class(
        server=config.endpoint.base_url or default_server,
        api_key=api_key,
        use_ssl=use_ssl,
        # No function id: that metadata is only for NVIDIA's hosted endpoint.
        # The model is named per stream by the fallback chain (pipelines/stt_models.py); Pipecat's own client sends
        # an empty one, which a Riva server answers with its default model for the language.
        model_function_map={"function_id": "", "model_name": config.endpoint.model or ""},
        sample_rate=sample_rate,
        stop_history=endpoint_silence_ms,
        settings=NvidiaSTTService.Settings(
            language=_language(config.language),
            boosted_lm_words=list(config.boosted_words) or None,
            boosted_lm_score=config.boost_score,
            interim_results=interim_results,
        ),
        **extra,
    )
