"""Benchmark: the tail server under load, and split plan's link model against a paced link.

1. **Load.** A digits split (CNN cut at pool2, 4-channel bottleneck, seeded) is served by
   ``edgepipe serve`` (a subprocess, bearer token on). N client threads, each with its own
   connection, send one sample's INT8 codes per request for a fixed time, over REST (binary
   tensor extension) and gRPC: throughput, p50/p99 latency and errors (goal: none). In the
   same run, the tail is called directly in ONNX Runtime on the same codes, one thread: the
   server's overhead is its p50 at one client minus that. The clients share the machine's
   cores with the server, so the throughput is what one small box does for both.
2. **Link check.** ``edgepipe split run`` through the pacing proxy at 1, 10 and 100 Mbps
   with a 20 ms round trip, against what ``edgepipe split plan --measure`` predicts for
   the bottleneck row at that link (head and tail measured on this machine), over REST and
   gRPC; and the same link model fed with the bytes that really crossed (protocol included).

    PYTHONPATH=src python benchmarks/serve_load.py [--seconds 10] [--json-out F]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
TOKEN = "benchmark-token-0123456789"


def make_split(folder: Path) -> None:
    subprocess.run([sys.executable, "-m", "edgepipe", "split", "builtin:digits-cnn", "--at",
                    "pool2", "--bottleneck", "4", "--data", "builtin:digits", "-o",
                    str(folder), "--distill-epochs", "10", "--finetune-epochs", "5"],
                   check=True, capture_output=True, timeout=900)


def start_server(folder: Path, extra: tuple[str, ...] = ("--grpc-port", "0")
                 ) -> tuple[subprocess.Popen, dict]:
    """``edgepipe serve FOLDER`` on free ports with ``extra`` options; its ready document."""
    env = {**os.environ, "EDGEPIPE_SERVE_TOKEN": TOKEN}
    process = subprocess.Popen([sys.executable, "-m", "edgepipe", "serve", str(folder),
                                "--port", "0", "--json", *extra],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("{"):
            return process, json.loads(line)["ready"]
        if process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"the server did not start: {process.stderr.read()[-2000:]}")


def load(ready: dict, protocol: str, clients: int, seconds: float,
         codes: np.ndarray) -> dict:
    from edgepipe.serve.client import Endpoint, ServerError, transport

    url = ready["http"] if protocol == "http" else f"grpc://{ready['grpc']}"
    endpoint = Endpoint.parse(url, "tail", TOKEN)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start_gate = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(index: int) -> None:
        link = transport(endpoint, timeout_s=30)
        try:
            body, headers = link.serialize("codes", "INT8", codes[index % len(codes)][None])
            link.send(body, headers)  # connect and warm up
            start_gate.wait()
            i = index
            while time.perf_counter() < stop_at[0]:
                body, headers = link.serialize("codes", "INT8", codes[i % len(codes)][None])
                began = time.perf_counter()
                try:
                    answer, answer_headers = link.send(body, headers)
                    link.deserialize(answer, answer_headers)
                    latencies[index].append(time.perf_counter() - began)
                except (ServerError, OSError):
                    errors[index] += 1
                i += clients
        finally:
            link.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds + 0.001
    started = time.perf_counter()
    start_gate.wait()
    for thread in threads:
        thread.join(seconds + 60)
    elapsed = time.perf_counter() - started
    flat = np.array([x for row in latencies for x in row])
    return {"protocol": protocol, "clients": clients, "seconds": elapsed,
            "requests": int(flat.size), "errors": int(sum(errors)),
            "throughput_rps": flat.size / elapsed,
            "p50_s": float(np.percentile(flat, 50)), "p99_s": float(np.percentile(flat, 99))}


def direct(folder: Path, codes: np.ndarray, seconds: float) -> dict:
    from edgepipe.runtime import open_artifact

    tail = open_artifact(folder / "tail.onnx", spin=False)  # as the server opens it
    for i in range(20):
        tail.run([codes[i % len(codes)][None]])
    times = []
    stop = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < stop:
        began = time.perf_counter()
        tail.run([codes[i % len(codes)][None]])
        times.append(time.perf_counter() - began)
        i += 1
    array = np.array(times)
    return {"protocol": "direct (ONNX Runtime, in process)", "clients": 1,
            "requests": int(array.size), "errors": 0, "throughput_rps": array.size / seconds,
            "p50_s": float(np.percentile(array, 50)), "p99_s": float(np.percentile(array, 99))}


def link_check(folder: Path, ready: dict, protocol: str, mbps: float, rtt_ms: float) -> dict:
    from edgepipe.serve.client import Endpoint, remote_split
    from edgepipe.split.plan import Link

    planned = subprocess.run(
        [sys.executable, "-m", "edgepipe", "split", "plan", "builtin:digits-cnn", "--device",
         "host", "--server", "host", "--bandwidth", f"{mbps:g}Mbps", "--rtt", f"{rtt_ms:g}ms",
         "--split", str(folder), "--cut", "pool2", "--measure", "--json"],
        capture_output=True, text=True, timeout=600, check=True)
    rows = {o["option"]: o for o in json.loads(planned.stdout)["result"]["options"]}
    row = rows["cut pool2 (bottleneck)"]
    link = Link(mbps * 1e6, rtt_ms / 1e3)
    url = ready["http"] if protocol == "http" else f"grpc://{ready['grpc']}"
    measured = remote_split(folder, Endpoint.parse(url, "tail", TOKEN), limit=100,
                            link=link).to_dict()
    total = measured["stages"]["total"]["p50_s"]
    return {"protocol": protocol, "mbps": mbps, "rtt_ms": rtt_ms, "plan_end_to_end_s": row["end_to_end_s"],
            "plan_sources": row["sources"], "plan_bytes": row["bytes"],
            "measured_p50_s": total, "error": (total - row["end_to_end_s"]) / row["end_to_end_s"],
            "request_bytes": measured["bytes"]["request_mean"],
            "response_bytes": measured["bytes"]["response_mean"],
            "bytes_through_per_request": measured["link"]["bytes_per_request"],
            "link_model_with_run_times_s": measured["link"]["planner_prediction_s"],
            "link_model_with_wire_bytes_s": measured["link"]["wire_prediction_s"],
            "wire_error": measured["link"]["wire_error"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json-out", type=Path, default=RESULTS / "serve_load.json")
    args = parser.parse_args()
    from edgepipe.runtime import open_artifact

    with tempfile.TemporaryDirectory(prefix="edgepipe-serve-load-") as name:
        folder = Path(name) / "split"
        make_split(folder)
        head = open_artifact(folder / "head.onnx")
        rng = np.random.default_rng(0)
        x = rng.random((64, *head.inputs[0].shape[1:]), dtype=np.float32)
        codes = np.concatenate([head.run([x[i:i + 1]])[0] for i in range(len(x))])
        process, ready = start_server(folder)
        try:
            rows = [direct(folder, codes, args.seconds)]
            for protocol in ("http", "grpc"):
                for clients in (1, 4, 16):
                    rows.append(load(ready, protocol, clients, args.seconds, codes))
            links = [link_check(folder, ready, protocol, mbps, 20.0)
                     for protocol in ("http", "grpc") for mbps in (1.0, 10.0, 100.0)]
        finally:
            process.terminate()
            process.wait(30)
    base = rows[0]["p50_s"]
    print(f"\n{'path':36} {'clients':>7} {'requests':>8} {'req/s':>8} {'p50':>9} {'p99':>9} "
          f"{'errors':>6} {'p50 - direct':>12}")
    for r in rows:
        print(f"{r['protocol']:36} {r['clients']:>7} {r['requests']:>8} "
              f"{r['throughput_rps']:8.0f} {r['p50_s'] * 1e3:7.3f}ms {r['p99_s'] * 1e3:7.3f}ms "
              f"{r['errors']:>6} {(r['p50_s'] - base) * 1e3:10.3f}ms")
    print(f"one sample's INT8 codes per request (4x8x8), token on; {args.seconds:g} s each; "
          "clients and server share 2 cores")
    print(f"\n{'protocol':8} {'link':>16} {'split plan':>11} {'measured p50':>13} {'error':>7} "
          f"{'plan bytes':>10} {'on the link':>11} {'wire model':>11} {'error':>7}")
    for r in links:
        print(f"{r['protocol']:8} {r['mbps']:>6g} Mbps {r['rtt_ms']:g} ms "
              f"{r['plan_end_to_end_s'] * 1e3:9.2f}ms {r['measured_p50_s'] * 1e3:11.2f}ms "
              f"{100 * r['error']:+6.1f}% {r['plan_bytes']:>10.0f} "
              f"{r['bytes_through_per_request']:>11.0f} "
              f"{r['link_model_with_wire_bytes_s'] * 1e3:9.2f}ms {100 * r['wire_error']:+6.1f}%")
    print("split plan --measure (head and tail profiled here) vs split run through the pacing "
          "proxy, 100 requests each;\n'on the link': bytes per request both ways, protocol "
          "included; 'wire model': split plan's link model with those bytes and the run's own "
          "stage times")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps({"load": rows, "link_check": links,
                                         "seconds": args.seconds}, indent=2))
    print(f"wrote {args.json_out}")


if __name__ == "__main__":
    main()
