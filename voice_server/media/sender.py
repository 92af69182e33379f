"""Pipecat's output media sender without two task hops per agent audio frame.

Why: in Pipecat 1.14 each call's output audio task takes every frame off its queue with `asyncio.wait_for(get())`
and writes it with `asyncio.wait_for(write_audio_frame())` (the write timeout that notices a peer that stopped
reading). On Python 3.11 `wait_for` wraps what it awaits in a new Task and resumes the caller through done
callbacks, so even a frame that is already queued and written at once costs several event-loop iterations. A call
can then send only one frame per few iterations: at 30 calls on one core an iteration takes long enough that
frames reach our paced output at about real time, the playout lead drains, and the next pause of the loop is an
underrun (instrumented: every server-side underrun at 25-30 calls was a frame that reached the transport after the
carrier's buffer had run dry, none a late timer). `asyncio.timeout` (Python 3.11+) keeps both timeouts without a
task, and a frame already queued is taken with `get_nowait`. A/B in BENCHMARKS.md, "Voice server: the media
sender's task hops".

Pipecat builds its senders as `BaseOutputTransport.MediaSender(...)`, so `install()` puts this class there for the
process (the voice server's carrier and browser transports alike). The audio mixer path is Pipecat's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from pipecat.frames.frames import Frame, OutputAudioRawFrame
from pipecat.transports.base_output import BOT_VAD_STOP_FALLBACK_SECS, BaseOutputTransport

_PipecatSender = BaseOutputTransport.MediaSender


class MediaSender(_PipecatSender):
    async def _internal_write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        # As Pipecat's, with the write timeout taken by asyncio.timeout instead of a task per frame.
        if not self._transport.is_usable:
            return False
        timeout = self._params.audio_out_write_timeout_secs
        try:
            async with asyncio.timeout(timeout):
                return bool(await self._transport.write_audio_frame(frame))
        except TimeoutError as e:
            await self._transport.push_error(
                f"{self._transport} timed out after {timeout}s writing audio to the transport; the peer has stopped "
                "reading",
                exception=e,
                force_treat_as_permanent=True,
            )
            return False

    def _next_frame(self) -> AsyncGenerator[Frame, None]:
        if self._mixer:
            return super()._next_frame()  # type: ignore[no-any-return]
        return self._frames_without_mixer(BOT_VAD_STOP_FALLBACK_SECS)

    async def _frames_without_mixer(self, vad_stop_secs: float) -> AsyncGenerator[Frame, None]:
        # As Pipecat's `without_mixer`: a frame already queued is taken at once; an empty queue is waited on for
        # at most vad_stop_secs, after which the bot is deemed to have stopped speaking.
        queue = self._audio_queue
        while True:
            try:
                if queue.empty():
                    async with asyncio.timeout(vad_stop_secs):
                        frame = await queue.get()
                else:
                    frame = queue.get_nowait()
                await self._filter_audio(frame)
                self._apply_volume(frame)
                yield frame
                queue.task_done()
            except TimeoutError:
                await self._bot_stopped_speaking()


def install() -> None:
    """Every output transport created after this uses the sender above."""
    BaseOutputTransport.MediaSender = MediaSender  # type: ignore[misc]
