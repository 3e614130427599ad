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
from edgepipe.formats import served_runtimes

TOKEN_ENV = "EDGEPIPE_SERVE_TOKEN"


# --runtime's choices: the runtimes of the formats the registry marks servable
ServeRuntime = StrEnum("ServeRuntime", {name: name for name in served_runtimes()})  # type: ignore[misc]
DEFAULT_RUNTIME = ServeRuntime(served_runtimes()[0])


def serve(
    split_dir: Annotated[Path, typer.Argument(help="The OUT directory of `edgepipe split` "
                                              "(or its tail.onnx / tail.xml).")],
    name: Annotated[str, typer.Option("--model-name", help="Model name on the protocol; `NAME-zlib` takes "
                                      "the batch's codes as one zlib stream (UINT8), and "
                                      "`NAME-entropy` (a split made with --entropy) the "
                                      "samples' bitstreams one after the other (UINT8).")] = "tail",
    host: Annotated[str, typer.Option(help="Address to bind (127.0.0.1: this machine "
                                      "only; 0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="REST port (0: any free port).")] = 8080,
    grpc_port: Annotated[int, typer.Option(help="gRPC port (0: any free port; -1: no "
                                           "gRPC).")] = 8081,
    runtime: Annotated[ServeRuntime, typer.Option(help="Runtime for the tail.")] = (
        DEFAULT_RUNTIME),
    threads: Annotated[int | None, typer.Option(help="The runtime's threads.")] = None,
    token_env: Annotated[str, typer.Option(
        help="Environment variable holding the bearer token clients must send (unset: no "
             "token).")] = TOKEN_ENV,
    max_request_bytes: Annotated[int, typer.Option(help="Largest request body taken "
                                                   "(413 beyond).")] = 16 * 1024 * 1024,
    timeout: Annotated[float, typer.Option(help="Seconds a request may take (408/504 "
                                           "beyond).")] = 30.0,
    read_timeout: Annotated[float, typer.Option(help="Seconds a request's body may take to "
                                                "arrive (408 beyond; at most --timeout).")
                            ] = 10.0,
    header_timeout: Annotated[float, typer.Option(help="Seconds a request's headers may take "
                                                  "to arrive (408, connection closed).")
                              ] = 10.0,
    idle_timeout: Annotated[float, typer.Option(help="Seconds a connection may stay open "
                                                "with no request (then closed).")] = 5.0,
    queue: Annotated[int, typer.Option(help="Requests that may wait for the runtime (503 "
                                       "with Retry-After beyond).")] = 512,
    max_connections: Annotated[int | None, typer.Option(
        help="Open connections kept; past it the longest idle is closed (default: 1000, or "
             "less under the file-descriptor limit).")] = None,
    allow_no_token: Annotated[bool, typer.Option(
        "--allow-no-token", help="Serve on an address other than loopback with no token "
                                 "(anyone who reaches it can use it).")] = False,
    json_output: JsonOption = False,
) -> None:
    """Serve the tail of a split on the Open Inference Protocol (KServe v2): REST with the
    binary tensor extension, and gRPC. Talk to it with tritonclient or `edgepipe split run`;
    the same client works against Triton, OpenVINO Model Server and KServe."""
    config = {"split": str(split_dir), "model_name": name, "host": host, "port": port,
              "grpc_port": grpc_port, "runtime": runtime.value, "timeout": timeout,
              "max_request_bytes": max_request_bytes, "token_env": token_env,
              "read_timeout": read_timeout, "header_timeout": header_timeout,
              "idle_timeout": idle_timeout, "queue": queue, "max_connections": max_connections,
              "allow_no_token": allow_no_token}
    with command("serve", json_output, config):
        import asyncio

        from edgepipe.errors import InputError

        token = os.environ.get(token_env) or None
        check_ports(port, grpc_port)
        if token is not None and len(token) < 16:
            raise InputError(f"The token in ${token_env} is {len(token)} characters long.",
                             hint="use at least 16 random characters, e.g. "
                                  "`openssl rand -hex 24`.", reference="weak-token")
        check_exposure(host, token, token_env, allow_no_token)
        if max_request_bytes < 1024 or timeout <= 0:
            raise InputError("--max-request-bytes must be at least 1024 and --timeout above 0.",
                             hint="the defaults are 16 MiB and 30 s.", reference="bad-limits")
        if min(read_timeout, header_timeout, idle_timeout) <= 0 or queue < 0 or (
                max_connections is not None and max_connections < 1):
            raise InputError("--read-timeout, --header-timeout and --idle-timeout must be "
                             "above 0, --queue at least 0 and --max-connections at least 1.",
                             hint="the defaults are 10 s, 10 s, 5 s, 512 and 1000.",
                             reference="bad-limits")

        from edgepipe.serve import import_kserve

        import_kserve()
        from edgepipe.serve.protect import ConnectionLimits, default_max_connections
        from edgepipe.serve.server import (
            Capacity,
            Limits,
            bind,
            quiet_kserve_logs,
            serve_async,
        )
        from edgepipe.serve.tail import Tail, model_names
        from edgepipe.serve.wire import find_tail

        artifact, wire = find_tail(split_dir, runtime.value)
        tail = Tail(artifact, wire, threads)
        sock = bind(host, port)
        limits = Limits(token=token, max_request_bytes=max_request_bytes, timeout_s=timeout,
                        read_timeout_s=read_timeout)
        capacity = Capacity.for_tail(tail, queue, ConnectionLimits(
            idle_timeout_s=idle_timeout, header_timeout_s=header_timeout,
            max_connections=max_connections or default_max_connections()))
        quiet_kserve_logs()
        bound_port = sock.getsockname()[1]

        def ready(grpc_bound: int | None, capacity: Capacity) -> None:
            info = {"http": f"http://{host}:{bound_port}", "grpc": None if grpc_bound is None
                    else f"{host}:{grpc_bound}", "models": list(model_names(tail, name).values()),
                    "artifact": str(artifact), "runtime": tail.session.name,
                    "wire": wire.to_dict(), "token": token is not None,
                    "capacity": capacity.to_dict()}
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
                                    limits=limits, on_ready=ready, capacity=capacity))
        finally:
            sock.close()


def check_ports(port: int, grpc_port: int) -> None:
    """Ports in range, before anything starts (a port past 65535 was an OverflowError from
    the socket, and gRPC bound some other port)."""
    from edgepipe.errors import InputError

    if not 0 <= port <= 65535:
        raise InputError(f"--port {port} is not a TCP port.",
                         hint="give 1-65535, or 0 for any free port.", reference="bad-port")
    if not -1 <= grpc_port <= 65535:
        raise InputError(f"--grpc-port {grpc_port} is not a TCP port.",
                         hint="give 1-65535, 0 for any free port, or -1 for no gRPC.",
                         reference="bad-port")


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (and IPv4-mapped loopback) or ``localhost``; anything else,
    names included, may be reachable from elsewhere."""
    import ipaddress

    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def check_exposure(host: str, token: str | None, token_env: str, allow_no_token: bool) -> None:
    """Serving beyond this machine needs a token, or the explicit ``--allow-no-token``
    (and then a warning on stderr)."""
    from edgepipe.errors import InputError

    if token is not None or is_loopback(host):
        return
    if not allow_no_token:
        raise InputError(f"--host {host} serves beyond this machine, and no token is set "
                         f"(${token_env} is empty): anyone who can reach it could use it.",
                         hint=f"set ${token_env} to a secret of 16+ characters (e.g. `export "
                              f"{token_env}=$(openssl rand -hex 24)`), bind to 127.0.0.1, or "
                              "pass --allow-no-token if the network itself is trusted.",
                         reference="no-token-on-network")
    stderr.print(f"warning: serving on {host} with no token (--allow-no-token): anyone who "
                 "can reach this address can run the model.", highlight=False)


def export_triton(
    split_dir: Annotated[Path, typer.Argument(help="The OUT directory of `edgepipe split`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New folder for the repository "
                                      "and the InferenceService.")],
    name: Annotated[str, typer.Option(
        "--model-name", help="Model name (Triton and KServe).")] = "tail",
    max_batch_size: Annotated[int, typer.Option(
        help="Triton's max_batch_size for a tail with a dynamic batch.")] = 64,
    queue_delay_us: Annotated[int, typer.Option(
        help="Dynamic batching: the longest a request waits for others.")] = 100,
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
        from edgepipe.serve.triton import ENTROPY_NOTE
        from edgepipe.serve.triton import export_triton as write_repository

        result = write_repository(split_dir, out, name=name, max_batch_size=max_batch_size,
                                  queue_delay_us=queue_delay_us, storage_uri=storage_uri)

        def render(console: Any) -> None:
            m = result.model
            console.print(f"wrote {', '.join(result.files)} under {out}")
            console.print(f"Triton model {m.name!r} ({m.platform}): input "
                          f"{m.input.name} {m.input.data_type} {list(m.input.dims)}"
                          f", output {m.output.name} {m.output.data_type} "
                          f"{list(m.output.dims)}, max_batch_size {m.max_batch_size}"
                          + (", dynamic batching" if m.dynamic_batching else ""))
            console.print(f"KServe: kubectl apply -f {out / result.service_path} (storageUri "
                          f"{result.storage_uri}"
                          + (", a placeholder: edit it or pass --storage-uri" if
                             result.storage_uri_is_placeholder else "") + ")")
            console.print(f"serve locally: tritonserver --model-repository {result.repository}"
                          "; then `edgepipe split run OUT --server http://HOST:8000`")
            if result.wire.entropy is not None:
                console.print("entropy-coded split: Triton takes the INT8 codes, not the "
                              "bitstreams; " + ENTROPY_NOTE["needs"])

        output.result(result, render=render)
