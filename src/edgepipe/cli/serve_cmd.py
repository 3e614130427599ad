"""``edgepipe serve OUT``: the tail of a split on the Open Inference Protocol."""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from edgepipe.cli.common import JsonOption, command, stderr

TOKEN_ENV = "EDGEPIPE_SERVE_TOKEN"


class ServeRuntime(StrEnum):
    onnxruntime = "onnxruntime"
    openvino = "openvino"


def serve(
    split_dir: Annotated[Path, typer.Argument(help="The OUT directory of `edgepipe split` "
                                              "(or its tail.onnx / tail.xml).")],
    name: Annotated[str, typer.Option(help="Model name on the protocol; `NAME-zlib` takes "
                                      "the batch's codes as one zlib stream (UINT8).")] = "tail",
    host: Annotated[str, typer.Option(help="Address to bind (127.0.0.1: this machine "
                                      "only; 0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="REST port (0: any free port).")] = 8080,
    grpc_port: Annotated[int, typer.Option(help="gRPC port (0: any free port; -1: no "
                                           "gRPC).")] = 8081,
    runtime: Annotated[ServeRuntime, typer.Option(help="Runtime for the tail.")] = (
        ServeRuntime.onnxruntime),
    threads: Annotated[int | None, typer.Option(help="The runtime's threads.")] = None,
    token_env: Annotated[str, typer.Option(
        help="Environment variable holding the bearer token clients must send (unset: no "
             "token).")] = TOKEN_ENV,
    max_request_bytes: Annotated[int, typer.Option(help="Largest request body taken "
                                                   "(413 beyond).")] = 16 * 1024 * 1024,
    timeout: Annotated[float, typer.Option(help="Seconds a request may take (408/504 "
                                           "beyond).")] = 30.0,
    json_output: JsonOption = False,
) -> None:
    """Serve the tail of a split on the Open Inference Protocol (KServe v2): REST with the
    binary tensor extension, and gRPC. Talk to it with tritonclient or `edgepipe split run`;
    the same client works against Triton, OpenVINO Model Server and KServe."""
    config = {"split": str(split_dir), "name": name, "host": host, "port": port,
              "grpc_port": grpc_port, "runtime": runtime.value, "timeout": timeout,
              "max_request_bytes": max_request_bytes, "token_env": token_env}
    with command("serve", json_output, config):
        import asyncio

        from edgepipe.errors import InputError
        from edgepipe.serve import import_kserve

        import_kserve()
        from edgepipe.serve.server import Limits, bind, quiet_kserve_logs, serve_async
        from edgepipe.serve.tail import Tail, find_tail

        token = os.environ.get(token_env) or None
        if token is not None and len(token) < 16:
            raise InputError(f"The token in ${token_env} is {len(token)} characters long.",
                             hint="use at least 16 random characters, e.g. "
                                  "`openssl rand -hex 24`.", reference="weak-token")
        if max_request_bytes < 1024 or timeout <= 0:
            raise InputError("--max-request-bytes must be at least 1024 and --timeout above 0.",
                             hint="the defaults are 16 MiB and 30 s.", reference="bad-limits")
        artifact, wire = find_tail(split_dir, runtime.value)
        tail = Tail(artifact, wire, threads)
        sock = bind(host, port)
        limits = Limits(token=token, max_request_bytes=max_request_bytes, timeout_s=timeout)
        quiet_kserve_logs()
        bound_port = sock.getsockname()[1]

        def ready(grpc_bound: int | None) -> None:
            info = {"http": f"http://{host}:{bound_port}", "grpc": None if grpc_bound is None
                    else f"{host}:{grpc_bound}", "models": [name, f"{name}-zlib"],
                    "artifact": str(artifact), "runtime": tail.session.name,
                    "wire": wire.to_dict(), "token": token is not None}
            if json_output:  # one line, so that a supervisor can read it as it comes
                sys.stdout.write(json.dumps({"command": "serve", "ok": True, "ready": info})
                                 + "\n")
                sys.stdout.flush()
            stderr.print(f"serving {artifact.name} ({tail.session.name}) as {name!r}: "
                         f"{info['http']}" + (f", gRPC {info['grpc']}" if info["grpc"] else "")
                         + f"; input {wire.dtype.upper()} [N, "
                         f"{', '.join(map(str, wire.shape[1:]))}] (cut {wire.cut})"
                         + ("; bearer token required" if token else "") + ". Ctrl-C stops.",
                         highlight=False)

        try:
            asyncio.run(serve_async(tail, name, sock=sock, host=host,
                                    grpc_port=None if grpc_port < 0 else grpc_port,
                                    limits=limits, on_ready=ready))
        finally:
            sock.close()
