"""What a call does when an AI stage fails: report each fallback step, and give up gracefully at the end.

The chains themselves live with their services (pipelines/stt_chain.py, llm_chain.py, tts_chain.py); they tell
the call's `DegradationPolicy` about every step. When a chain is exhausted the policy speaks the agent's message
and transfers the caller to the agent's first transfer target, or ends the call when it has none.

`PromptClips` holds short pre-recorded prompts (WAV, synthesised once by the platform's own Piper TTS into a cache
folder) that the TTS chain plays when no TTS endpoint answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import httpx

from core.agent_config import AgentConfig
from core.call_events import ServiceDegraded
from pipelines.control import CallControl, CallEventSink

log = logging.getLogger(__name__)

Service = Literal["stt", "llm", "tts"]
CLIP_RATES = (8000, 16000)  # the carriers' rates


class DegradationPolicy:
    """Per call. Fallback steps become `ServiceDegraded` events; `give_up` runs at most once per call."""

    def __init__(self, agent: AgentConfig, call_id: str, control: CallControl, events: CallEventSink) -> None:
        self.agent = agent
        self.call_id = call_id
        self._control = control
        self._events = events
        self._task: asyncio.Task[None] | None = None
        self.steps: list[ServiceDegraded] = []

    def report(self, service: Service, from_endpoint: str, to: str, reason: str) -> None:
        event = ServiceDegraded(call_id=self.call_id, service=service, from_endpoint=from_endpoint[:500],
                                to=to[:500], reason=reason[:500])
        self.steps.append(event)
        log.warning("call %s: %s degraded: %s -> %s (%s)", self.call_id, service, from_endpoint, to, reason)
        self._events.degraded(event)

    @property
    def gave_up(self) -> bool:
        """The call is being handed over or ended: no stage tries its endpoints again (a reply started before the
        caller's turn ended, SPECULATIVE_LLM, and the turn's own reply would otherwise both fail and report)."""
        return self._task is not None

    def give_up(self, service: Service, reason: str, message: str) -> None:
        """Say `message`, then transfer (or end the call). Returns at once: the caller of this is usually a
        pipeline processor, and the speech it triggers must flow through that same pipeline."""
        if self._task is not None:
            return
        self._task = asyncio.get_running_loop().create_task(self._give_up(service, reason, message),
                                                            name=f"degrade-{self.call_id}")

    async def _give_up(self, service: Service, reason: str, message: str) -> None:
        detail = f"{service} unavailable: {reason}"[:300]
        targets = self.agent.transfer_targets
        if targets:
            target = targets[0]
            self.report(service, "", "transfer", f"{target.name}: {reason}")
            try:
                status = await self._control.transfer(target, announcement=message, brief=detail)
            except Exception as exc:  # a failed transfer must still end the call
                status = f"transfer failed: {exc}"
            if status == "transferring":
                return
            detail = f"{detail}; {status}"[:300]
            message = ""  # already said
        self.report(service, "", "end_call", reason)
        await self._control.end_call("error", goodbye=message or None, detail=detail)


def _norm(text: str) -> str:
    return " ".join(text.split()).strip().lower()


class PromptClips:
    """Pre-recorded prompts by text and sample rate: `<cache>/<sha256(text)>-<rate>.wav` (16-bit mono)."""

    def __init__(self, cache_dir: Path, tts_url: str, http: httpx.AsyncClient, voice: str = "en_US-joe-medium",
                 engine: str = "piper", auth_headers: Callable[[], dict[str, str]] | None = None) -> None:
        """`auth_headers`: the platform TTS server's credentials, fresh per request (a service token)."""
        self.cache_dir = cache_dir
        self._auth_headers = auth_headers
        self._tts_url = tts_url.rstrip("/")
        self._http = http
        self._voice = voice
        self._engine = engine
        self._memory: dict[Path, bytes] = {}
        self._pending: set[Path] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def path(self, text: str, sample_rate: int) -> Path:
        digest = hashlib.sha256(_norm(text).encode()).hexdigest()[:24]
        return self.cache_dir / f"{digest}-{sample_rate}.wav"

    def get(self, text: str, sample_rate: int) -> bytes | None:
        """PCM16 of the clip for `text` at `sample_rate`, if one has been recorded."""
        path = self.path(text, sample_rate)
        pcm = self._memory.get(path)
        if pcm is None and path.exists():
            try:
                with wave.open(str(path)) as wav:
                    if wav.getframerate() == sample_rate and wav.getsampwidth() == 2 and wav.getnchannels() == 1:
                        pcm = wav.readframes(wav.getnframes())
            except (OSError, wave.Error, EOFError) as exc:
                log.warning("prompt clip %s unreadable: %s", path, exc)
            if pcm:
                self._memory[path] = pcm
        return pcm or None

    def count(self) -> int:
        return len(list(self.cache_dir.glob("*.wav"))) if self.cache_dir.exists() else 0

    def ensure(self, texts: list[str], rates: tuple[int, ...] = CLIP_RATES) -> None:
        """Records missing clips in the background (once per text and rate)."""
        for text in {t for t in texts if t.strip()}:
            for rate in rates:
                path = self.path(text, rate)
                if path in self._pending or path in self._memory or path.exists():
                    continue
                self._pending.add(path)
                task = asyncio.get_running_loop().create_task(self._record(text, rate, path), name="prompt-clip")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def wait(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _record(self, text: str, rate: int, path: Path) -> None:
        body = {"input": text, "model": self._engine, "voice": self._voice, "response_format": "pcm",
                "sample_rate": rate}
        try:
            headers = self._auth_headers() if self._auth_headers is not None else {}
            resp = await self._http.post(f"{self._tts_url}/v1/audio/speech", json=body, headers=headers, timeout=60.0)
            if resp.status_code != 200 or not resp.content:
                log.warning("prompt clip %r not recorded: TTS answered %s", text[:60], resp.status_code)
                return
            buf = io.BytesIO()
            with wave.open(buf, "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(rate)
                wav.writeframes(resp.content[: len(resp.content) - len(resp.content) % 2])
            data = buf.getvalue()
            await asyncio.to_thread(self._write, path, data)
        except httpx.HTTPError as exc:
            log.warning("prompt clip %r not recorded: %s", text[:60], exc)
        finally:
            self._pending.discard(path)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # never a half-written clip under the final name


def degradation_texts(agent: AgentConfig) -> list[str]:
    """What a call may have to say without a working TTS."""
    return [agent.degradation_message_stt, agent.llm.canned_reply]
