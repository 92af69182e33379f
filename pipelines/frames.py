"""Frames this project adds to Pipecat's, shared by the pipeline processors and the carrier transport."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from pipecat.frames.frames import DataFrame, SystemFrame


@dataclass
class PlaybackPauseFrame(SystemFrame):
    """A possible barge-in: stop feeding the carrier, but keep what is queued (no clear) in case it was noise."""

    max_pause_s: float = 5.0


@dataclass
class PlaybackResumeFrame(SystemFrame):
    """The barge-in was false (no words): carry on playing where the pause left off."""


@dataclass
class InterimsWantedFrame(SystemFrame):
    """Someone started or stopped watching the call's live view: the STT asks for interim results (or stops) at
    the next moment it can switch streams without cutting the caller's sentence."""


@dataclass
class PlaybackMarkFrame(DataFrame):
    """Reaches the transport after the audio queued before it has been sent; the transport then sends a carrier
    mark (Twilio) / checkpoint (Vobiz) and resolves `played` when the carrier reports that point was played
    (True), or that it was cleared or the call ended first (False)."""

    mark: str = ""  # (Frame already has a `name`)
    played: asyncio.Future[bool] | None = field(default=None, compare=False)
    # Resolved when the mark goes out (after the audio before it), with how long until it should play (s).
    sent: asyncio.Future[float] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.interruptible = False
