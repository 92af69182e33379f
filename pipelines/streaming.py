"""Audio that is still being produced (a greeting synthesised while the carrier connects)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator


class StreamingAudio:
    """PCM arriving from a synthesis still in progress: readers get what is there and then wait for more."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._chunks: list[bytes] = []
        self._more = asyncio.Event()
        self.done = False
        self.error: str | None = None

    def append(self, chunk: bytes) -> None:
        if chunk:
            self._chunks.append(chunk)
            self._more.set()

    def finish(self, error: str | None = None) -> None:
        self.done = True
        self.error = error
        self._more.set()

    async def chunks(self) -> AsyncIterator[bytes]:
        index = 0
        while True:
            while index < len(self._chunks):
                yield self._chunks[index]
                index += 1
            if self.done:
                return
            self._more.clear()
            if index < len(self._chunks) or self.done:
                continue
            await self._more.wait()
