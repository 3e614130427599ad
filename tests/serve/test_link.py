"""The link emulator paces real bytes: a transfer through it takes at least the time the
link model says, and not much more."""

from __future__ import annotations

import socket
import threading
import time

from edgepipe.serve.link import PacedLink


def _server(handle) -> tuple[socket.socket, threading.Thread]:
    """A server on 127.0.0.1 that accepts one connection and gives it to ``handle``
    (bounded: 20 s timeouts)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(20)

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            connection.settimeout(20)
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            handle(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


def _sink(expected: int) -> tuple[socket.socket, threading.Thread]:
    """Reads ``expected`` bytes, then answers b'ok'."""

    def handle(connection: socket.socket) -> None:
        got = 0
        while got < expected:
            chunk = connection.recv(65536)
            if not chunk:
                return
            got += len(chunk)
        connection.sendall(b"ok")

    return _server(handle)


def test_transfer_takes_the_link_models_time():
    size, bandwidth, rtt = 50_000, 2e6, 0.05
    server, thread = _sink(size)
    with server, PacedLink("127.0.0.1", server.getsockname()[1], bandwidth, rtt) as link:
        with socket.create_connection(("127.0.0.1", link.port), timeout=20) as client:
            started = time.perf_counter()
            client.sendall(b"x" * size)
            answer = client.recv(2)
            took = time.perf_counter() - started
        thread.join(20)
    model = size * 8 / bandwidth + rtt + 2 * 8 / bandwidth
    assert answer == b"ok"
    assert link.bytes == {"up": size, "down": 2}
    assert model <= took < model * 1.3 + 0.05, (took, model)


def test_an_unreachable_upstream_closes_the_connection():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with PacedLink("127.0.0.1", port, 1e6) as link, \
            socket.create_connection(("127.0.0.1", link.port), timeout=10) as client:
        assert client.recv(10) == b""


def _echo() -> tuple[socket.socket, threading.Thread]:
    """Echoes each read back at once, 40 reads at most."""

    def handle(connection: socket.socket) -> None:
        for _ in range(40):
            chunk = connection.recv(65536)
            if not chunk:
                return
            connection.sendall(chunk)

    return _server(handle)


def test_small_round_trips_are_paced_to_the_sub_millisecond():
    """Ping-pong of 400 bytes: each exchange takes the round trip plus both serializations,
    within a couple of milliseconds (an asyncio proxy was a millisecond late per hop: epoll's
    timeouts are whole milliseconds)."""
    bandwidth, rtt, size = 100e6, 0.02, 400
    server, thread = _echo()
    with server, PacedLink("127.0.0.1", server.getsockname()[1], bandwidth, rtt) as link:
        client = socket.create_connection(("127.0.0.1", link.port), timeout=20)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        took = []
        for _ in range(20):
            started = time.perf_counter()
            client.sendall(b"x" * size)
            got = 0
            while got < size:
                got += len(client.recv(65536))
            took.append(time.perf_counter() - started)
    # the link was left with the connection open: its threads stopped all the same
    client.close()
    thread.join(20)
    model = rtt + 2 * size * 8 / bandwidth
    took.sort()
    assert model <= took[0] and took[len(took) // 2] < model + 0.002, (took, model)
    assert not [t for t in threading.enumerate() if t.name.startswith("paced-link")]
