"""The link emulator paces real bytes: a transfer through it takes at least the time the
link model says, and not much more."""

from __future__ import annotations

import socket
import threading
import time

from edgepipe.serve.link import PacedLink


def _sink(expected: int) -> tuple[socket.socket, threading.Thread]:
    """A server on 127.0.0.1 that reads ``expected`` bytes, then answers b'ok' (bounded)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(20)

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            connection.settimeout(20)
            got = 0
            while got < expected:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                got += len(chunk)
            connection.sendall(b"ok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


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
