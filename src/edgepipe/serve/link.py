"""A slow link on one machine: a TCP proxy on 127.0.0.1 that paces bytes at a bandwidth and
holds each one for half the round trip, in each direction.

Each direction is a queue: a chunk read from one side leaves at
``max(now, previous departure) + bytes * 8 / bandwidth`` and is delivered ``rtt / 2``
later, in order; so a request pays its serialization time and the one-way delay, and the
answer pays them again on the way back. This is the link model of ``split plan`` applied
to real traffic, so that the planner's predictions can be checked against measurements
without root (``tc netem`` needs a network namespace and CAP_NET_ADMIN). Timers on a busy
machine fire late by up to a millisecond or so: the emulated link is never faster than
asked, sometimes slightly slower.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

CHUNK = 16 * 1024


class PacedLink:
    """``with PacedLink("127.0.0.1", 8080, 10e6, 0.02) as link:`` then talk to
    ``127.0.0.1:link.port``."""

    def __init__(self, upstream_host: str, upstream_port: int, bandwidth_bps: float,
                 rtt_s: float = 0.0) -> None:
        if bandwidth_bps <= 0 or rtt_s < 0:
            raise ValueError("the bandwidth must be positive and the round trip non-negative")
        self.upstream = (upstream_host, upstream_port)
        self.bandwidth_bps = bandwidth_bps
        self.rtt_s = rtt_s
        self.port = 0
        self.bytes = {"up": 0, "down": 0}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> PacedLink:
        self._thread = threading.Thread(target=self._run, name="paced-link", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the link emulator did not start in 10 s")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *_: Any) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to __enter__ when it happens at start
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        pumps = [asyncio.create_task(self._pump(reader, up_writer, "up")),
                 asyncio.create_task(self._pump(up_reader, writer, "down"))]
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        for w in (writer, up_writer):
            with contextlib.suppress(Exception):
                w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    direction: str) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        delivery = asyncio.create_task(self._deliver(queue, writer))
        departure = 0.0
        try:
            while True:
                chunk = await reader.read(CHUNK)
                if not chunk:
                    break
                self.bytes[direction] += len(chunk)
                departure = max(time.perf_counter(), departure) + len(chunk) * 8 / \
                    self.bandwidth_bps
                await queue.put((departure + self.rtt_s / 2, chunk))
            await queue.put((0.0, b""))
            await delivery
        finally:
            delivery.cancel()

    @staticmethod
    async def _deliver(queue: asyncio.Queue, writer: asyncio.StreamWriter) -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                with contextlib.suppress(Exception):
                    writer.write_eof()
                return
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()
