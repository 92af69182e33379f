"""Group commit: requests that arrive while one write is in flight wait, then go to the database together.

On FerretDB every write command is a round trip and a transaction (on SQLite also an fsync under the only writer),
so one write per request caps the rate; grouping turns N concurrent writes into one. The queue and its single
flusher live here; each kind of write (inserts, running totals) says how a group is taken and written.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    def __init__(self) -> None:
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def _submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._waiting:
            await self._commit(self._take())

    def _take(self) -> list[tuple[Item, asyncio.Future[Result]]]:
        """The next group: by default everything waiting."""
        group, self._waiting = self._waiting, []
        return group

    async def _commit(self, group: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        """Writes the group and settles every future in it (a result, or the error for each caller to retry)."""
        raise NotImplementedError
