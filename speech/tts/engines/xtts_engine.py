"""XTTS v2 through coqui-tts, on a GPU, streaming with `Xtts.inference_stream`.

torch and coqui-tts are imported only here, and this module is imported only when TTS_ENGINES names xtts, so the
CPU install never needs them. Weights come from a local folder (TTS_XTTS_MODEL_DIR); nothing is downloaded. Without
CUDA or weights the engine refuses to start with a message that says what is missing: it never falls back.

Voices: the speakers shipped with the weights (speakers_xtts.pth) plus voices cloned from uploaded reference clips,
stored as WAV + JSON in TTS_VOICES_DIR with their conditioning latents cached next to them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from speech.tts.config import TtsSettings
from speech.tts.engines.base import EngineUnavailable, VoiceError, VoiceInfo

log = logging.getLogger("speech.tts.xtts")

REQUIRED_FILES = ("config.json", "model.pth", "vocab.json")
LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh-cn", "ja", "hu", "ko", "hi")
SAMPLE_RATE = 24000


def check_weights(model_dir: Path | None) -> Path:
    if model_dir is None:
        raise EngineUnavailable(
            "xtts engine: TTS_XTTS_MODEL_DIR is not set. Point it at a local XTTS v2 folder holding "
            + ", ".join(REQUIRED_FILES)
            + " (and speakers_xtts.pth for the built-in speakers); weights are never downloaded."
        )
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise EngineUnavailable(f"xtts engine: {model_dir} lacks {', '.join(missing)} (XTTS v2 weights)")
    return model_dir


def import_torch_and_coqui(device: str) -> tuple[Any, Any, Any]:
    try:
        import torch
    except ImportError as exc:
        raise EngineUnavailable("xtts engine: torch is not installed; `pip install -e .[xtts]` on a GPU machine") from exc
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EngineUnavailable(
            f"xtts engine: TTS_XTTS_DEVICE={device} but CUDA is not available here "
            "(no GPU, or a CPU-only torch build). XTTS is only run on a GPU."
        )
    try:
        from TTS.tts.configs.xtts_config import XttsConfig
        from TTS.tts.models.xtts import Xtts
    except ImportError as exc:
        raise EngineUnavailable("xtts engine: coqui-tts is not installed; `pip install -e .[xtts]`") from exc
    return torch, XttsConfig, Xtts


class XttsEngine:
    name = "xtts"
    supports_cloning = True
    native_sample_rate = SAMPLE_RATE

    def __init__(self, model: Any, torch: Any, voices_dir: Path, device: str, stream_chunk_size: int) -> None:
        self._model = model
        self._torch = torch
        self._device = device
        self._voices_dir = voices_dir
        self._stream_chunk_size = stream_chunk_size
        self._latents: dict[str, tuple[Any, Any]] = {}
        self._info: dict[str, VoiceInfo] = {}
        self._lock = threading.Lock()  # guards the voice tables, not inference
        self._first_step_lock = threading.Lock()
        speakers = getattr(getattr(model, "speaker_manager", None), "speakers", None) or {}
        for speaker, data in speakers.items():
            self._latents[speaker] = (data["gpt_cond_latent"], data["speaker_embedding"])
            self._info[speaker] = VoiceInfo(speaker, speaker, self.name, "multi", SAMPLE_RATE)
        self._load_cloned_voices()

    @classmethod
    def load(cls, settings: TtsSettings) -> XttsEngine:
        model_dir = check_weights(settings.tts_xtts_model_dir)
        torch, xtts_config_cls, xtts_cls = import_torch_and_coqui(settings.tts_xtts_device)
        t0 = time.perf_counter()
        config = xtts_config_cls()
        config.load_json(str(model_dir / "config.json"))
        model = xtts_cls.init_from_config(config)
        model.load_checkpoint(
            config, checkpoint_dir=str(model_dir), eval=True, use_deepspeed=settings.tts_xtts_use_deepspeed
        )
        model.to(settings.tts_xtts_device)
        voices_dir = settings.voices_dir()
        voices_dir.mkdir(parents=True, exist_ok=True)
        engine = cls(model, torch, voices_dir, settings.tts_xtts_device, settings.tts_xtts_stream_chunk_size)
        log.info(
            "xtts loaded",
            extra={"model_dir": str(model_dir), "device": settings.tts_xtts_device,
                   "voices": len(engine._info), "load_s": round(time.perf_counter() - t0, 2)},
        )
        if engine._info:
            first = next(iter(engine._info))
            for _ in engine.synthesize("Warming up.", first, 1.0, "en", threading.Event()):
                pass
        return engine

    # --- voices --------------------------------------------------------------------------------------------------

    def _load_cloned_voices(self) -> None:
        for meta_path in sorted(self._voices_dir.glob("*.json")):
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                wav = meta_path.with_suffix(".wav")
                self._register(meta["id"], meta.get("name", meta["id"]), wav, meta.get("language", "en"),
                               meta.get("owner"))
            except Exception:
                log.exception("skipping unreadable cloned voice", extra={"path": str(meta_path)})

    def _register(self, voice_id: str, name: str, wav: Path, language: str, owner: str | None) -> VoiceInfo:
        cache = wav.with_suffix(".latents.pt")
        if cache.is_file():
            data = self._torch.load(str(cache), map_location="cpu")
            latents = (data["gpt_cond_latent"], data["speaker_embedding"])
        else:
            try:
                latents = self._model.get_conditioning_latents(audio_path=[str(wav)], gpt_cond_len=30, max_ref_length=30)
            except Exception as exc:
                raise VoiceError(f"could not compute a voice from the reference clip: {exc}") from exc
            self._torch.save({"gpt_cond_latent": latents[0], "speaker_embedding": latents[1]}, str(cache))
        info = VoiceInfo(voice_id, name, self.name, language, SAMPLE_RATE, cloned=True, owner=owner)
        with self._lock:
            self._latents[voice_id] = latents
            self._info[voice_id] = info
        return info

    def voices(self) -> list[VoiceInfo]:
        with self._lock:
            return list(self._info.values())

    def add_voice(self, voice_id: str, name: str, reference_wav: Path, language: str, owner: str) -> VoiceInfo:
        if language not in LANGUAGES:
            raise VoiceError(f"language {language!r} is not one XTTS v2 speaks: {', '.join(LANGUAGES)}")
        info = self._register(voice_id, name, reference_wav, language, owner)
        reference_wav.with_suffix(".json").write_text(
            json.dumps({"id": voice_id, "name": name, "language": language, "owner": owner}), encoding="utf-8"
        )
        return info

    def delete_voice(self, voice_id: str) -> None:
        with self._lock:
            info = self._info.get(voice_id)
            if info is None:
                raise VoiceError(f"unknown voice {voice_id!r}")
            if not info.cloned:
                raise VoiceError(f"{voice_id!r} ships with the XTTS weights and cannot be deleted")
            del self._info[voice_id]
            del self._latents[voice_id]
        for suffix in (".wav", ".json", ".latents.pt"):
            (self._voices_dir / f"{voice_id}{suffix}").unlink(missing_ok=True)

    # --- synthesis -----------------------------------------------------------------------------------------------

    def synthesize(
        self, text: str, voice_id: str, speed: float, language: str | None, cancel: threading.Event
    ) -> Iterator[np.ndarray]:
        with self._lock:
            latents = self._latents.get(voice_id)
            info = self._info.get(voice_id)
        if latents is None or info is None:
            raise VoiceError(f"unknown xtts voice {voice_id!r}")
        lang = language or (info.language if info.language in LANGUAGES else "en")
        gpt_cond_latent, speaker_embedding = latents
        chunks = self._model.inference_stream(
            text,
            lang,
            gpt_cond_latent,
            speaker_embedding,
            stream_chunk_size=self._stream_chunk_size,
            speed=speed,
            enable_text_splitting=False,  # the server already sends one sentence or clause at a time
        )
        # coqui's GPT keeps the speaker prefix of the latest request on the shared model (store_prefix_emb) and reads
        # it on the first decoding step; later steps use their own KV cache. Holding a lock over that first step
        # keeps concurrent streams from swapping voices, while the rest of their generation runs side by side.
        with self._first_step_lock:
            first = next(chunks, None)
        if first is None:
            return
        yield first.squeeze().float().cpu().numpy()
        for chunk in chunks:
            if cancel.is_set():
                return
            yield chunk.squeeze().float().cpu().numpy()

    def close(self) -> None:
        self._latents.clear()
        if self._device.startswith("cuda"):
            self._torch.cuda.empty_cache()
