"""Group commit: a beacon's 2xx is sent only after the batch holding its record is fsynced.

Records queue in the worker's segment writer; one committer task takes the queue every
BATCH_WINDOW_S (or as soon as the previous fsync ends, when it took longer), writes and fsyncs
it in a thread, then wakes every request whose record was in it. One fsync serves every beacon
that arrived meanwhile, so throughput grows with load while each wait stays about one fsync.
"""

from __future__ import annotations

import asyncio
from typing import Any

from adserver.formats.segment import SegmentWriter

BATCH_WINDOW_S = 0.002


class GroupCommit:
    """Batches a worker's event and decision records into one write and one fsync per interval,
    off the event loop."""

    def __init__(self, writer: SegmentWriter):
        self.writer = writer
        self.waiting: list[asyncio.Future[None]] = []
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def append(self, record: Any) -> None:
        """Queue a record and return once it is on disk."""
        fut = asyncio.get_running_loop().create_future()
        self.writer.append(record)
        self.waiting.append(fut)
        self.wake.set()
        await fut

    async def _run(self) -> None:
        while True:
            await self.wake.wait()
            await asyncio.sleep(BATCH_WINDOW_S)
            self.wake.clear()
            batch, self.waiting = self.waiting, []
            data = self.writer.take()
            try:
                await asyncio.to_thread(self.writer.write, data, True)
            except Exception as e:  # the disk failed: every waiter gets an error, not a 2xx
                for fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            for fut in batch:
                if not fut.done():
                    fut.set_result(None)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        data = self.writer.take()
        if data:
            self.writer.write(data, True)
        self.writer.close()
        for fut in self.waiting:
            if not fut.done():
                fut.set_result(None)
