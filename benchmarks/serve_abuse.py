"""Benchmark: the tail server's real clients while others misbehave.

A digits split (as in serve_load.py) is served by ``edgepipe serve`` (a subprocess on
127.0.0.1, bearer token on, its default limits unless ``--serve-args`` says otherwise).
Two phases of ``--seconds`` each:

1. **Quiet.** Only the legitimate clients: ``--clients`` threads, each on its own kept-alive
   connection, plus one thread opening a new connection per request; every request is one
   sample's INT8 codes (binary tensor extension).
2. **Mixed.** The same legitimate clients, and at the same time ``--idle`` connections that
   connect and send nothing, ``--slow-headers`` that send a request's headers one byte per
   second (slow loris), ``--slow-body`` that send whole headers and then the body one byte
   per second, each opened again as soon as the server closes it (the attacker keeps its
   count up), and one thread sending malformed requests back to back (bad HTTP, bad
   lengths, oversized declared bodies, a bad token, bad JSON, wrong shapes).

Per class: count, p50/p99 latency (for the hostile connections: how long the server let
them live), and errors. A legitimate request's error is anything but 200; a malformed
request's error is a 5xx or no answer; a hostile connection's "error" would be one the
server never closed. Goal: 0 errors for the legitimate clients in both phases.

    PYTHONPATH=src python benchmarks/serve_abuse.py [--seconds 20] [--json-out F]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import TOKEN, make_split, start_server  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def drain(stream: Any, into: list[str]) -> None:
    """Read the server's stderr as it comes, as a supervisor would (a pipe nobody reads fills,
    and a server that logs per request then blocks on it)."""
    for line in stream:
        into.append(line)


def infer_body(codes: np.ndarray) -> tuple[bytes, dict[str, str]]:
    header = json.dumps({"inputs": [{"name": "codes", "shape": list(codes.shape),
                                     "datatype": "INT8",
                                     "parameters": {"binary_data_size": codes.nbytes}}]}).encode()
    return header + codes.tobytes(), {
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(header))}


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors = 0
        self.outcomes: dict[str, int] = {}

    def add(self, seconds: float | None, outcome: str, error: bool) -> None:
        with self.lock:
            if seconds is not None:
                self.latencies.append(seconds)
            self.errors += error
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def row(self, name: str, unit: str) -> dict:
        array = np.array(self.latencies) if self.latencies else np.array([np.nan])
        return {"class": name, "unit": unit, "count": sum(self.outcomes.values()),
                "errors": self.errors, "p50_s": float(np.percentile(array, 50)),
                "p99_s": float(np.percentile(array, 99)),
                "max_s": float(np.max(array)), "outcomes": dict(sorted(self.outcomes.items()))}


def legit_client(target: tuple[str, int], codes: np.ndarray, stop: threading.Event,
                 record: Recorder, keep_alive: bool) -> None:
    body, headers = infer_body(codes)
    connection = None
    while not stop.is_set():
        if connection is None:
            connection = http.client.HTTPConnection(*target, timeout=30)
        began = time.perf_counter()
        try:
            connection.request("POST", "/v2/models/tail/infer", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            record.add(None, type(exc).__name__, True)
            connection.close()
            connection = None
            continue
        record.add(time.perf_counter() - began, str(status), status != 200)
        if not keep_alive:
            connection.close()
            connection = None
    if connection is not None:
        connection.close()


def malformed_requests() -> list[tuple[str, bytes]]:
    auth = b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
    good_json = json.dumps({"inputs": [{"name": "codes", "shape": [1, 4, 8, 7],
                                        "datatype": "INT8", "data": [0] * 224}]}).encode()
    return [
        ("garbage", b"\x16\x03\x01 not http at all\r\n\r\n"),
        ("bad content-length", b"POST /v2/models/tail/infer HTTP/1.1\r\nHost: b\r\n"
                               b"Content-Length: x1\r\n\r\n"),
        ("length and chunked", b"POST /v2/models/tail/infer HTTP/1.1\r\nHost: b\r\n"
                               b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"0\r\n\r\n"),
        ("bad chunk", b"POST /v2/models/tail/infer HTTP/1.1\r\nHost: b\r\n" + auth
                      + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"),
        ("declared 10 GB", b"POST /v2/models/tail/infer HTTP/1.1\r\nHost: b\r\n" + auth
                           + b"Content-Length: 10000000000\r\n\r\n"),
        ("70 kB header", b"GET /v2/health/ready HTTP/1.1\r\nHost: b\r\nX-A: " + b"a" * 70000
                         + b"\r\n\r\n"),
        ("wrong token", b"POST /v2/models/tail/infer HTTP/1.1\r\nHost: b\r\nAuthorization: "
                        b"Bearer nope\r\nContent-Length: 2\r\n\r\n{}"),
        ("bad json", b"POST /v2/models/tail/infer HTTP/1.1\r\nHost: b\r\n" + auth
                     + b"Content-Type: application/json\r\nContent-Length: 9\r\n\r\n{not json"),
        ("wrong shape", b"POST /v2/models/tail/infer HTTP/1.1\r\nHost: b\r\n" + auth
                        + b"Content-Type: application/json\r\nContent-Length: "
                        + str(len(good_json)).encode() + b"\r\n\r\n" + good_json),
        ("unknown model", b"GET /v2/models/nope HTTP/1.1\r\nHost: b\r\n" + auth + b"\r\n"),
    ]


def malformed_client(target: tuple[str, int], stop: threading.Event, record: Recorder,
                     kinds: Recorder) -> None:
    cases = malformed_requests()
    i = 0
    while not stop.is_set():
        name, payload = cases[i % len(cases)]
        i += 1
        began = time.perf_counter()
        status = 0
        try:
            with socket.create_connection(target, timeout=15) as sock:
                sock.sendall(payload)
                data = b""
                while b"\r\n" not in data:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                if data.startswith(b"HTTP/1.1 "):
                    status = int(data.split()[1])
        except OSError:
            pass
        error = not 400 <= status < 500
        record.add(time.perf_counter() - began, str(status or "no answer"), error)
        kinds.add(None, f"{name}: {status or 'no answer'}", error)


class Hostile(threading.Thread):
    """Held-open hostile connections (see the module's docstring), reopened when closed;
    for each one the server closed, how long it had lived and what it was told."""

    def __init__(self, target: tuple[str, int], kind: str, count: int,
                 records: Recorder, tick_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.target, self.kind, self.count, self.tick_s = target, kind, count, tick_s
        self.record = records
        self.stop = threading.Event()
        self.still_open = 0

    def _open(self) -> tuple[socket.socket, float] | None:
        try:
            sock = socket.create_connection(self.target, timeout=5)
        except OSError:
            self.record.add(None, "connect failed", False)
            return None
        if self.kind == "slow body":
            sock.sendall(b"POST /v2/models/tail/infer HTTP/1.1\r\nHost: s\r\nAuthorization: "
                         b"Bearer " + TOKEN.encode() + b"\r\nContent-Type: application/json"
                         b"\r\nContent-Length: 100000\r\n\r\n")
        sock.setblocking(False)
        return sock, time.perf_counter()

    def run(self) -> None:
        import selectors

        watch = selectors.DefaultSelector()
        drip = b"POST /v2/models/tail/infer HTTP/1.1\r\nHost: s\r\nX-Slow: " + b"a" * 100_000
        held: dict[int, tuple[socket.socket, float, int]] = {}  # slot: socket, opened, sent

        def open_slot(slot: int) -> None:
            entry = self._open()
            if entry is not None:
                held[slot] = (*entry, 0)
                watch.register(entry[0], selectors.EVENT_READ, slot)

        for slot in range(self.count):
            open_slot(slot)
        next_tick = time.perf_counter() + self.tick_s
        while not self.stop.is_set():
            # closures are seen as they happen (the lifetimes are exact to a few ms)
            for key, _ in watch.select(max(0.0, min(0.05, next_tick - time.perf_counter()))):
                slot = key.data
                sock, opened, _ = held.pop(slot)
                try:
                    data = sock.recv(4096)
                except BlockingIOError:
                    held[slot] = (sock, opened, 0)
                    continue
                except OSError:
                    data = b""
                told = data.split()[1].decode() if data.startswith(b"HTTP/1.1 ") else "closed"
                self.record.add(time.perf_counter() - opened, told, False)
                watch.unregister(sock)
                sock.close()
                open_slot(slot)
            for slot in range(self.count):
                if slot not in held and not self.stop.is_set():
                    open_slot(slot)
            if time.perf_counter() < next_tick:
                continue
            next_tick += self.tick_s
            for slot, (sock, opened, sent) in list(held.items()):
                try:
                    if self.kind == "slow headers":
                        sock.send(drip[sent:sent + 1])
                        held[slot] = (sock, opened, sent + 1)
                    elif self.kind == "slow body":
                        sock.send(b" ")
                except OSError:
                    pass
        self.still_open = len(held)
        for sock, _, _ in held.values():
            sock.close()


def phase(target: tuple[str, int], codes: np.ndarray, seconds: float, clients: int,
          hostile: dict[str, int] | None) -> tuple[list[dict], dict]:
    stop = threading.Event()
    kept, fresh = Recorder(), Recorder()
    threads = [threading.Thread(target=legit_client, args=(target, codes[i % len(codes)][None],
                                                           stop, kept, True))
               for i in range(clients)]
    threads.append(threading.Thread(target=legit_client, args=(target, codes[:1], stop, fresh,
                                                               False)))
    attackers: list[Hostile] = []
    bad, bad_kinds = Recorder(), Recorder()
    if hostile:
        attackers = [Hostile(target, kind, count, Recorder()) for kind, count in hostile.items()
                     if count]
        for attacker in attackers:
            attacker.start()
        time.sleep(1.0)  # the hostile connections are open before the clients start
        threads.append(threading.Thread(target=malformed_client,
                                        args=(target, stop, bad, bad_kinds)))
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(60)
    for attacker in attackers:
        attacker.stop.set()
        attacker.join(30)
    rows = [kept.row(f"legit, kept-alive ({clients} clients)", "request"),
            fresh.row("legit, new connection each", "request")]
    if hostile:
        rows.append(bad.row("malformed requests", "request"))
        for attacker in attackers:
            row = attacker.record.row(f"{attacker.kind} ({attacker.count} held)",
                                      "connection lifetime")
            row["still_open_at_end"] = attacker.still_open
            rows.append(row)
    return rows, bad_kinds.outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--idle", type=int, default=100)
    parser.add_argument("--slow-headers", type=int, default=100)
    parser.add_argument("--slow-body", type=int, default=50)
    parser.add_argument("--split", type=Path, help="an existing split OUT (default: make one)")
    parser.add_argument("--serve-args", default="", help="more `edgepipe serve` options")
    parser.add_argument("--json-out", type=Path, default=RESULTS / "serve_abuse.json")
    args = parser.parse_args()
    from edgepipe.runtime import open_artifact

    with tempfile.TemporaryDirectory(prefix="edgepipe-serve-abuse-") as name:
        folder = args.split or Path(name) / "split"
        if args.split is None:
            make_split(folder)
        head = open_artifact(folder / "head.onnx")
        x = np.random.default_rng(0).random((16, *head.inputs[0].shape[1:]), dtype=np.float32)
        codes = np.concatenate([head.run([x[i:i + 1]])[0] for i in range(len(x))])
        process, ready = start_server(folder, ("--grpc-port", "-1", *args.serve_args.split()))
        logged: list[str] = []
        reader = threading.Thread(target=drain, args=(process.stderr, logged), daemon=True)
        reader.start()
        try:
            host, port = ready["http"].removeprefix("http://").rsplit(":", 1)
            target = (host, int(port))
            quiet, _ = phase(target, codes, args.seconds, args.clients, None)
            hostile = {"idle": args.idle, "slow headers": args.slow_headers,
                       "slow body": args.slow_body}
            mixed, malformed_kinds = phase(target, codes, args.seconds, args.clients, hostile)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            reader.join(10)
    print(f"\n{'phase':6} {'class':36} {'count':>6} {'p50':>10} {'p99':>10} {'errors':>6}  "
          "outcomes")
    for label, rows in (("quiet", quiet), ("mixed", mixed)):
        for r in rows:
            unit = "" if r["unit"] == "request" else " (lifetime)"
            print(f"{label:6} {r['class'] + unit:36} {r['count']:>6} {r['p50_s'] * 1e3:8.1f}ms "
                  f"{r['p99_s'] * 1e3:8.1f}ms {r['errors']:>6}  "
                  + ", ".join(f"{k}: {v}" for k, v in r["outcomes"].items()))
    print(f"{args.seconds:g} s per phase; one sample's INT8 codes per legitimate request; "
          f"server limits {json.dumps(ready.get('capacity'))}; clients, attackers and server "
          f"share {os.cpu_count()} cores")
    print(f"server stderr: {len(logged)} lines, {sum('Traceback' in x for x in logged)} "
          "tracebacks")
    print("malformed requests by kind: " + ", ".join(f"{k} x{v}" for k, v in
                                                     malformed_kinds.items()))
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps({
        "seconds": args.seconds, "clients": args.clients, "server": ready.get("capacity"),
        "serve_args": args.serve_args, "quiet": quiet, "mixed": mixed,
        "malformed_by_kind": malformed_kinds,
        "server_stderr_lines": len(logged),
        "server_tracebacks": sum("Traceback" in x for x in logged)}, indent=2))
    print(f"wrote {args.json_out}")
    legit_errors = sum(r["errors"] for r in quiet + mixed if r["class"].startswith("legit"))
    if legit_errors:
        print(f"legitimate clients saw {legit_errors} errors", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
