"""A slow link on one machine: a TCP proxy on 127.0.0.1 that paces bytes at a bandwidth and
holds each one for half the round trip, in each direction.

Each direction is a queue: a chunk read from one side leaves at
``max(now, previous departure) + bytes * 8 / bandwidth`` and is delivered ``rtt / 2``
later, in order; so a request pays its serialization time and the one-way delay, and the
answer pays them again on the way back. This is the link model of ``split plan`` applied
to real traffic, so that the planner's predictions can be checked against measurements
without root (``tc netem`` needs a network namespace and CAP_NET_ADMIN).

The proxy is made of plain threads and blocking sockets, not asyncio: an event loop's
timers go through ``epoll_wait``, whose timeout is whole milliseconds rounded up, so each
paced chunk arrived up to a millisecond late; ``time.sleep`` wakes within tens of
microseconds. The emulated link is never faster than asked, and slower only by that.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from typing import Any

CHUNK = 16 * 1024


def _nodelay(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class PacedLink:
    """``with PacedLink("127.0.0.1", 8080, 10e6, 0.02) as link:`` then talk to
    ``127.0.0.1:link.port``. ``link.bytes`` counts what went through, ``up`` (towards the
    server) and ``down``."""

    def __init__(self, upstream_host: str, upstream_port: int, bandwidth_bps: float,
                 rtt_s: float = 0.0) -> None:
        if bandwidth_bps <= 0 or rtt_s < 0:
            raise ValueError("the bandwidth must be positive and the round trip non-negative")
        self.upstream = (upstream_host, upstream_port)
        self.bandwidth_bps = bandwidth_bps
        self.rtt_s = rtt_s
        self.port = 0
        self.bytes = {"up": 0, "down": 0}
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> PacedLink:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        listener.settimeout(0.2)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._start(self._accept, "paced-link-accept")
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        with self._lock:
            sockets = [self._listener, *self._sockets]
        for sock in sockets:
            if sock is None:
                continue
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        for thread in list(self._threads):
            thread.join(5)

    def _start(self, target: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.settimeout(None)
                _nodelay(sock)
            with self._lock:
                self._sockets += [client, server]
                self.connections += 1
            for source, sink, direction in ((client, server, "up"), (server, client, "down")):
                pending: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()
                self._start(self._read, f"paced-link-{direction}-in", source, pending,
                            direction)
                self._start(self._deliver, f"paced-link-{direction}-out", sink, pending)

    def _read(self, source: socket.socket, pending: queue.SimpleQueue,
              direction: str) -> None:
        departure = 0.0
        try:
            while True:
                chunk = source.recv(CHUNK)
                if not chunk:
                    break
                with self._lock:
                    self.bytes[direction] += len(chunk)
                departure = (max(time.perf_counter(), departure)
                             + len(chunk) * 8 / self.bandwidth_bps)
                pending.put((departure + self.rtt_s / 2, chunk))
        except OSError:
            pass
        pending.put((0.0, b""))

    def _deliver(self, sink: socket.socket, pending: queue.SimpleQueue) -> None:
        while True:
            due, chunk = pending.get()
            if not chunk:
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)
                return
            wait = due - time.perf_counter()
            if wait > 0 and self._stop.wait(wait):
                return
            try:
                sink.sendall(chunk)
            except OSError:
                return
