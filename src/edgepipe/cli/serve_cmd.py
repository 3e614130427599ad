"""``edgepipe serve OUT``: the tail of a split on the Open Inference Protocol."""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

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
        from edgepipe.serve.tail import Tail
        from edgepipe.serve.wire import find_tail

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


def export_triton(
    split_dir: Annotated[Path, typer.Argument(help="The OUT directory of `edgepipe split`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New folder for the repository "
                                      "and the InferenceService.")],
    name: Annotated[str, typer.Option(help="Model name (Triton and KServe).")] = "tail",
    max_batch_size: Annotated[int, typer.Option(help="Triton's max_batch_size for a tail "
                                                "with a dynamic batch.")] = 64,
    queue_delay_us: Annotated[int, typer.Option(help="Dynamic batching: the longest a "
                                                "request waits for others.")] = 100,
    storage_uri: Annotated[str | None, typer.Option(
        help="Where KServe finds the repository's models/ folder (s3://, gs://, pvc://...; "
             "default: a pvc:// placeholder to edit).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Write the tail as a Triton model repository (config.pbtxt, 1/model.onnx) and a KServe
    InferenceService running it; `edgepipe split run` talks to either unchanged."""
    config = {"split": str(split_dir), "out": str(out), "name": name,
              "max_batch_size": max_batch_size, "storage_uri": storage_uri}
    with command("export-triton", json_output, config) as output:
        from edgepipe.serve.triton import export_triton as write_repository

        result = write_repository(split_dir, out, name=name, max_batch_size=max_batch_size,
                                  queue_delay_us=queue_delay_us, storage_uri=storage_uri)

        def render(console: Any) -> None:
            m = result["model"]
            console.print(f"wrote {', '.join(result['files'])} under {out}")
            console.print(f"Triton model {m['name']!r} ({m['platform']}): input "
                          f"{m['input']['name']} {m['input']['data_type']} {m['input']['dims']}"
                          f", output {m['output']['name']} {m['output']['data_type']} "
                          f"{m['output']['dims']}, max_batch_size {m['max_batch_size']}"
                          + (", dynamic batching" if m["dynamic_batching"] else ""))
            service = result["inference_service"]
            console.print(f"KServe: kubectl apply -f {out / service['path']} (storageUri "
                          f"{service['storage_uri']}"
                          + (", a placeholder: edit it or pass --storage-uri" if
                             service["storage_uri_is_placeholder"] else "") + ")")
            console.print(f"serve locally: tritonserver --model-repository {result['repository']}"
                          "; then `edgepipe split run OUT --server http://HOST:8000`")

        output.result(result, render=render)
