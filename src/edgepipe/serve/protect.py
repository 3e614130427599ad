"""What keeps the REST server answering its real clients when others misbehave.

Two layers, each for what it can see:

* **Connections** (:func:`protocol_class`, a subclass of uvicorn's own HTTP protocol): a
  connection that sends nothing is closed after ``idle_timeout`` (uvicorn arms its
  keep-alive timer only after a first answer, so a connect-only client was never closed);
  a request's head (request line and headers) must arrive whole within ``header_timeout`` of
  its first byte (408, then closed: uvicorn has no header timeout) and within
  ``max_head_bytes`` (431); and past ``max_connections`` the connection that has waited
  longest without a request in flight is closed to make room. Open connections are not
  counted against the capacity for requests (uvicorn's ``limit_concurrency`` counted them
  together with running requests, so 64 idle sockets answered everyone 503).
* **Requests** (:class:`Admission`, used by the ASGI guard and the gRPC wrapper): a fixed
  number of requests in service, derived from the runtime's threads, and a bounded queue in
  front of them. A request is turned away (503 with ``Retry-After``; gRPC
  RESOURCE_EXHAUSTED) only when the queue is full or when, at the recent service rate, it
  would wait longer than half the request time limit: real overload, not a burst. Request
  bodies are read, under their own deadline, before a request joins the queue, so a slow
  upload holds no place in it, and the bytes held in bodies at once have a ceiling.
"""

from __future__ import annotations

import asyncio
import json
import math
import resource
import time
from collections import deque
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ConnectionLimits:
    idle_timeout_s: float = 5.0
    header_timeout_s: float = 10.0
    max_head_bytes: int = 64 * 1024
    max_connections: int = 1000


def default_max_connections() -> int:
    """Open connections kept: below the process's file-descriptor limit (past it, accept()
    fails and nobody gets in), at most 1000."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        soft = 1024
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(16, min(1000, soft - 64))


def _base_protocol() -> type:
    try:
        import httptools  # noqa: F401
    except ImportError:  # uvicorn's own fallback, the same choice as its "auto"
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    return HttpToolsProtocol


def _closing_answer(status: str, message: str) -> bytes:
    """A whole HTTP/1.1 answer with a JSON error body that closes the connection."""
    body = json.dumps({"error": message}).encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: "
            f"{len(body)}\r\nconnection: close\r\n\r\n").encode() + body


def _head_timeout_answer(seconds: float) -> bytes:
    return _closing_answer("408 Request Timeout", "The request's headers did not arrive "
                           f"within the server's limit of {seconds:g} s.")


def _head_too_large_answer(limit: int) -> bytes:
    return _closing_answer("431 Request Header Fields Too Large",
                           f"The request's headers passed {limit:,} bytes, the most this "
                           "server takes.")


def protocol_class(limits: ConnectionLimits) -> type:
    """uvicorn's HTTP protocol (httptools, or h11 without it) with the connection deadlines
    and the connection ceiling of ``limits``."""
    base = _base_protocol()

    class GuardedProtocol(base):  # type: ignore[misc, valid-type]
        connection_limits = limits

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._deadline: asyncio.TimerHandle | None = None
            self._seen_cycle: Any = None
            self._head_bytes = 0
            self._waiting_since = time.monotonic()
            self._arm(limits.idle_timeout_s, partial=False)
            if len(self.connections) > limits.max_connections:
                self._make_room()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _awaiting_head(self) -> bool:
            """No request in flight: idle, or a request's head still arriving."""
            return self.cycle is None or self.cycle.response_complete

        def _arm(self, seconds: float, *, partial: bool) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._expire, partial)

        def _disarm(self) -> None:
            if getattr(self, "_deadline", None) is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self, partial: bool) -> None:
            self._deadline = None
            if self.transport.is_closing() or not self._awaiting_head():
                return
            if partial:
                self.transport.write(_head_timeout_answer(limits.header_timeout_s))
            self.transport.close()

        def _make_room(self) -> None:
            idle = [c for c in self.connections if c is not self
                    and isinstance(c, GuardedProtocol) and c._awaiting_head()
                    and not c.transport.is_closing()]
            if idle:
                min(idle, key=lambda c: c._waiting_since).transport.close()
            else:  # every other connection has a request in flight: the new one is turned away
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self._awaiting_head():
                if self._head_bytes == 0:
                    # the first byte of a request: its head has header_timeout to arrive
                    # (this also ends uvicorn's keep-alive wait, which data_received cancels)
                    self._arm(limits.header_timeout_s, partial=True)
                self._head_bytes += len(data)
            super().data_received(data)
            if self.cycle is not None and self.cycle is not self._seen_cycle:
                # the head is complete (a request cycle began): from here the request's own
                # deadlines apply (the guard's body deadline and time limit)
                self._seen_cycle = self.cycle
                self._head_bytes = 0
                self._disarm()
            elif self._awaiting_head() and self._head_bytes > limits.max_head_bytes \
                    and not self.transport.is_closing():
                self.transport.write(_head_too_large_answer(limits.max_head_bytes))
                self.transport.close()

        # httptools: the head's size, counted as the parser reads it (a head that arrives
        # whole in one read is complete before data_received can look at it)
        def on_message_begin(self) -> None:
            self._head_size = 0
            self._refused = False
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            self._count_head(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count_head(len(name) + len(value) + 4)
            if not self._refused:
                super().on_header(name, value)

        def _count_head(self, size: int) -> None:
            self._head_size += size
            if self._head_size > limits.max_head_bytes and not self._refused:
                self._refused = True
                self.transport.write(_head_too_large_answer(limits.max_head_bytes))
                self.transport.close()

        def on_headers_complete(self) -> None:
            if not self._refused:
                super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if not self._refused:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if not self._refused:
                super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._waiting_since = time.monotonic()
            self._head_bytes = 0
            # uvicorn armed its keep-alive timer (idle_timeout); a pipelined request that
            # started already has its own head complete

    GuardedProtocol.__name__ = f"Guarded{base.__name__}"
    return GuardedProtocol


class Overloaded(Exception):
    """The queue is full, or a new request would wait past its time: turned away."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Admission:
    """``slots`` requests in service at once, up to ``queue`` more waiting, first come first
    served. Shared by REST and gRPC: both feed the same runtime."""

    def __init__(self, slots: int, queue: int, timeout_s: float) -> None:
        self.slots = max(1, slots)
        self.queue = max(0, queue)
        self.timeout_s = timeout_s
        self.active = 0
        self.waiting: deque[asyncio.Future] = deque()
        self.hold_s: float | None = None  # recent time a request holds a slot (EWMA)
        self.turned_away = 0

    def expected_wait_s(self, ahead: int) -> float:
        if self.hold_s is None:
            return 0.0
        return ahead * self.hold_s / self.slots

    def _refuse(self, why: str, wait_s: float) -> Overloaded:
        self.turned_away += 1
        return Overloaded(why, max(1, min(60, math.ceil(wait_s or 1))))

    @asynccontextmanager
    async def admit(self):
        queued_at = time.perf_counter()
        if self.active >= self.slots or self.waiting:
            ahead = len(self.waiting) + 1
            wait = self.expected_wait_s(ahead)
            if len(self.waiting) >= self.queue:
                raise self._refuse(f"The server is overloaded: {self.active} requests in "
                                   f"service and {len(self.waiting)} queued, the most it "
                                   "holds.", wait)
            if wait > self.timeout_s / 2:
                raise self._refuse(f"The server is overloaded: {len(self.waiting)} requests "
                                   f"queued would take about {wait:.1f} s, past half the "
                                   f"server's limit of {self.timeout_s:g} s.", wait)
            turn = asyncio.get_running_loop().create_future()
            self.waiting.append(turn)
            try:
                await turn
            except BaseException:
                if turn in self.waiting:
                    self.waiting.remove(turn)
                elif turn.done() and not turn.cancelled():
                    self._release()  # the slot was handed over as this one gave up
                raise
        else:
            self.active += 1
        began = time.perf_counter()
        try:
            yield began - queued_at  # the time it waited
        finally:
            held = time.perf_counter() - began
            self.hold_s = held if self.hold_s is None else 0.8 * self.hold_s + 0.2 * held
            self._release()

    def _release(self) -> None:
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot passes to it: active stays the same
                return
        self.active -= 1
