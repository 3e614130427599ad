"""The tail server: kserve's Open Inference Protocol data plane (its v2 REST endpoints and
its gRPC servicer) on our own uvicorn and gRPC servers.

kserve's ``ModelServer`` binds REST to 0.0.0.0 and gRPC to [::] with no option to change
either, takes its settings from ``sys.argv`` at import, and has no hook for a token or a
request size limit on REST. So the protocol code is kserve's, and the servers around it are
set up here: bound to 127.0.0.1 unless told otherwise; an optional bearer token (compared
in constant time; 401 without it; the health endpoints stay open for probes); a maximum
request size (413, chunked bodies included); a deadline for the body (408) and a time limit
per request (504); a queue for the runtime (503 with Retry-After when really overloaded);
deadlines and a ceiling for connections (:mod:`edgepipe.serve.protect`); and every
exception a request can cause answered as a 4xx with a message, never a 500 and never a
dead worker. docs/security.md ("The server") has the threat model and every limit.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import json
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any

from edgepipe.serve.protect import (
    Admission,
    ConnectionLimits,
    Overloaded,
    default_max_connections,
    protocol_class,
)
from edgepipe.serve.tail import ARRIVAL, QUEUED, Tail, TailFailure, tail_models

OPEN_PATHS = ("/v2/health/live", "/v2/health/ready", "/")


@dataclass(frozen=True)
class Limits:
    token: str | None = None
    max_request_bytes: int = 16 * 1024 * 1024
    timeout_s: float = 30.0
    read_timeout_s: float = 10.0  # a request's body, from its headers to its last byte
    max_buffered_bytes: int | None = None  # request bodies held at once (None: 8 x the max)

    @property
    def body_deadline_s(self) -> float:
        return min(self.read_timeout_s, self.timeout_s)

    @property
    def buffered_ceiling(self) -> int:
        return self.max_buffered_bytes or max(64 * 1024 * 1024, 8 * self.max_request_bytes)


def _json(status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None):
    body = json.dumps({"error": message}).encode()
    return ({"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode()), *(headers or [])]},
            {"type": "http.response.body", "body": body})


CLOSE = [(b"connection", b"close")]


def authorized(token: str | None, header: str | None) -> bool:
    if token is None:
        return True
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer "):].encode(), token.encode())


class Guard:
    """ASGI middleware: arrival time, token, size limit, the body's deadline, the queue for
    the runtime (``admission``), time limit.

    The body is read here, whole, before the request joins the queue: counted as it comes
    (413 as soon as it passes the limit, chunked or not, with nothing past the limit kept),
    under its own deadline (408), and within a ceiling on the bytes all bodies hold at once
    (503). The application then gets it in one piece.
    """

    def __init__(self, app: Any, limits: Limits, admission: Admission | None = None) -> None:
        self.app = app
        self.limits = limits
        self.admission = admission
        self.buffered = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrival = time.perf_counter()
        ARRIVAL.set(arrival)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        if scope["path"] not in OPEN_PATHS and not authorized(
                self.limits.token, headers.get("authorization")):
            await _answer(send, 401, "This server needs a bearer token: send the header "
                                     "'Authorization: Bearer TOKEN'.",
                          [(b"www-authenticate", b"Bearer"), *CLOSE])
            return
        limit = self.limits.max_request_bytes
        try:
            declared = int(headers.get("content-length", "0") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            await _answer(send, 413, f"The request body is {declared:,} bytes; this server "
                                     f"takes at most {limit:,}.", CLOSE)
            return
        held = [0]
        try:
            try:
                body = await asyncio.wait_for(self._read_body(receive, limit, held),
                                              self.limits.body_deadline_s)
            except TimeoutError:
                await _answer(send, 408, "the request body took longer than the server's "
                                         f"limit of {self.limits.body_deadline_s:g} s.", CLOSE)
                return
            except _TooLarge as exc:
                await _answer(send, 413, f"The request body passed {limit:,} bytes "
                                         f"({exc.args[0]:,} so far), the most this server "
                                         "takes.", CLOSE)
                return
            except Overloaded as exc:
                await _answer(send, 503, str(exc), [
                    (b"retry-after", str(exc.retry_after_s).encode()), *CLOSE])
                return
            except Exception as exc:  # the body could not be read: the request's fault
                await _answer(send, 400, f"The request body cannot be read: {exc}", CLOSE)
                return
            if body is None:  # the client went away
                return
            await self._serve(scope, receive, send, body, arrival)
        finally:
            self.buffered -= held[0]

    async def _read_body(self, receive: Any, limit: int, held: list[int]) -> bytes | None:
        parts: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            if held[0] + len(chunk) > limit:
                raise _TooLarge(held[0] + len(chunk))
            if chunk:
                if self.buffered + len(chunk) > self.limits.buffered_ceiling:
                    raise Overloaded("The server is overloaded: request bodies hold "
                                     f"{self.buffered:,} bytes, the most it keeps at once.", 2)
                self.buffered += len(chunk)
                held[0] += len(chunk)
                parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts)

    async def _serve(self, scope: dict, receive: Any, send: Any, body: bytes,
                     arrival: float) -> None:
        state = {"started": False, "given": False}

        async def replay() -> dict:
            if not state["given"]:
                state["given"] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def tracked_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        async def run() -> None:
            if self.admission is None or scope["path"] in OPEN_PATHS:
                await self.app(scope, replay, tracked_send)
                return
            async with self.admission.admit() as waited:
                ARRIVAL.set(arrival + waited)  # the wait is the queue's, not the reading's
                QUEUED.set(waited)
                await self.app(scope, replay, tracked_send)

        left = self.limits.timeout_s - (time.perf_counter() - arrival)
        try:
            await asyncio.wait_for(run(), max(left, 0.001))
        except Overloaded as exc:
            await _answer(send, 503, str(exc),
                          [(b"retry-after", str(exc.retry_after_s).encode())])
        except TimeoutError:
            if not state["started"]:
                await _answer(send, 504, "the answer took longer than the server's limit of "
                                         f"{self.limits.timeout_s:g} s.")
        except Exception as exc:
            # Starlette re-raises what its last handler answered (so that servers log it);
            # the answer is sent, and a traceback per bad request is noise
            if not state["started"]:
                await _answer(send, 400, f"The request cannot be read: {exc}")


async def _answer(send: Any, status: int, message: str,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    for part in _json(status, message, headers):
        await send(part)


class _TooLarge(Exception):
    pass


def served_configs(tail: Tail, name: str) -> dict[str, dict[str, Any]]:
    """Each served model's configuration in Triton's JSON form (the Open Inference Protocol's
    metadata has no place for the wire's scale and zero point; Triton's configuration
    extension, ``GET /v2/models/NAME/config``, has parameters), so that a device reads the
    same answer from this server and from Triton."""
    from edgepipe.serve.tail import MAX_BATCH, STREAM_INPUTS, model_names
    from edgepipe.serve.triton import model_config
    from edgepipe.tensors import TensorSpec

    wire = tail.wire
    output = TensorSpec(tail.output.name, ("N", *tail.output.shape[1:]), tail.output.dtype)
    codes = TensorSpec("codes", ("N", *wire.shape[1:]), wire.dtype)
    platform = f"edgepipe_{tail.session.name}"
    specs = {"codes": codes, **{encoding: TensorSpec(tensor, (-1,), "uint8")
                                for encoding, tensor in STREAM_INPUTS.items()}}
    return {model: model_config(model, specs[encoding], output, wire,
                                max_batch_size=MAX_BATCH, queue_delay_us=None,
                                platform=platform)
            for encoding, model in model_names(tail, name).items()}


def build_app(dataplane: Any, repository_extension: Any, limits: Limits,
              configs: dict[str, dict[str, Any]] | None = None,
              admission: Admission | None = None) -> Any:
    """A FastAPI app with kserve's v2 endpoints, kserve's exception handlers (400 for bad
    input, 404 for an unknown model), Triton's model configuration endpoint for
    ``configs``, and our answers for the rest."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from kserve import errors
    from kserve.protocol.rest.v2_endpoints import register_v2_endpoints

    app = FastAPI(title="edgepipe tail server", docs_url=None, redoc_url=None,
                  openapi_url=None)
    register_v2_endpoints(app, dataplane, repository_extension)
    known = configs or {}

    @app.get("/v2/models/{model_name}/config")
    async def model_configuration(model_name: str) -> JSONResponse:
        if model_name not in known:
            return JSONResponse(status_code=404, content={
                "error": f"No model {model_name!r} here; this server has "
                         f"{', '.join(sorted(known)) or 'none'}."})
        return JSONResponse(content=known[model_name])

    for kind, handler in ((errors.InvalidInput, errors.invalid_input_handler),
                          (errors.ModelNotFound, errors.model_not_found_handler),
                          (errors.ModelNotReady, errors.model_not_ready_handler),
                          (NotImplementedError, errors.not_implemented_error_handler)):
        app.add_exception_handler(kind, handler)

    async def bad_body(_: Any, exc: Exception) -> JSONResponse:
        # what is left is the body failing to decode (the protocol's JSON, the binary
        # extension's header length, the tensor's size): the request's fault, said as such
        return JSONResponse(status_code=400, content={
            "error": f"The request cannot be read: {type(exc).__name__}: {exc}"})

    async def invalid(_: Any, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}"
                             for e in exc.errors()[:5])
        return JSONResponse(status_code=400, content={
            "error": f"The request is not an Open Inference Protocol request: {problems}"})

    async def inference_error(_: Any, exc: Exception) -> JSONResponse:
        # kserve raises InferenceError while decoding a request too (BYTES that are not
        # UTF-8, for one): only the tail failing on a checked request is the server's fault
        status = 500 if isinstance(exc, TailFailure) else 400
        return JSONResponse(status_code=status, content={"error": str(exc)})

    app.add_exception_handler(errors.InferenceError, inference_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, bad_body)
    return Guard(app, limits, admission)


class _GrpcGuard:
    """gRPC: arrival time, token (metadata ``authorization: Bearer TOKEN``; the health
    calls stay open), the queue for the runtime and the time limit, around kserve's
    servicer."""

    def __init__(self, limits: Limits, admission: Admission | None = None) -> None:
        import grpc

        self.grpc = grpc
        self.limits = limits
        self.admission = admission

    def wrap(self, handler: Any, method: str, metadata: dict[str, str]) -> Any:
        grpc = self.grpc
        limits = self.limits
        open_call = method.endswith(("/ServerLive", "/ServerReady"))
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        admission = None if open_call else self.admission

        async def admitted(request: Any, context: Any) -> Any:
            if admission is None:
                return await inner(request, context)
            async with admission.admit() as waited:
                arrival = ARRIVAL.get()
                if arrival is not None:
                    ARRIVAL.set(arrival + waited)
                QUEUED.set(waited)
                return await inner(request, context)

        async def behaviour(request: Any, context: Any) -> Any:
            ARRIVAL.set(time.perf_counter())
            if not open_call and not authorized(limits.token, metadata.get("authorization")):
                await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                    "This server needs a bearer token: send the metadata "
                                    "'authorization: Bearer TOKEN'.")
            try:
                return await asyncio.wait_for(admitted(request, context), limits.timeout_s)
            except Overloaded as exc:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
            except TailFailure as exc:
                await context.abort(grpc.StatusCode.INTERNAL, str(exc))
            except TimeoutError:
                await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                                    f"the answer took longer than the server's limit of "
                                    f"{limits.timeout_s:g} s.")

        return grpc.unary_unary_rpc_method_handler(
            behaviour, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)


def _grpc_interceptor(limits: Limits, admission: Admission | None = None) -> Any:
    from grpc import aio

    guard = _GrpcGuard(limits, admission)

    class Interceptor(aio.ServerInterceptor):
        async def intercept_service(self, continuation: Any, details: Any) -> Any:
            handler = await continuation(details)
            metadata = {k.lower(): v for k, v in (details.invocation_metadata or ())
                        if isinstance(v, str)}
            return guard.wrap(handler, details.method, metadata)

    return Interceptor()


@dataclass(frozen=True)
class Capacity:
    """How much the server takes at once: ``slots`` requests in service (the runtime's
    threads: the cores the tail computes on, and on which the server decodes and encodes),
    ``queue`` more waiting for them, and the connections' limits."""

    slots: int
    queue: int = 512
    connections: ConnectionLimits = ConnectionLimits()

    @classmethod
    def for_tail(cls, tail: Tail, queue: int = 512,
                 connections: ConnectionLimits | None = None) -> Capacity:
        return cls(slots=max(2, tail.threads), queue=queue,
                   connections=connections or ConnectionLimits(
                       max_connections=default_max_connections()))

    def to_dict(self) -> dict[str, Any]:
        c = self.connections
        return {"in_service": self.slots, "queue": self.queue,
                "max_connections": c.max_connections, "idle_timeout_s": c.idle_timeout_s,
                "header_timeout_s": c.header_timeout_s}


def bind(host: str, port: int) -> socket.socket:
    """The REST socket, bound here so that a busy port is a clear error (and port 0 works)."""
    from edgepipe.errors import InputError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and
    # with Nagle on, a kept-alive client waits out its delayed ACK (40 ms) per answer
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            raise InputError(f"Cannot listen on {host}: {exc.strerror or exc}.",
                             hint="give an address of this machine (127.0.0.1 for this "
                                  "machine only, 0.0.0.0 for every interface).",
                             reference="bad-host") from exc
        raise InputError(f"Cannot listen on {host}:{port}: {exc.strerror}.",
                         hint="pick another --port (0 takes any free one), or stop what "
                              "holds it.", reference="port-unavailable") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


async def serve_async(tail: Tail, name: str, *, sock: socket.socket, host: str,
                      grpc_port: int | None, limits: Limits, on_ready: Any = None,
                      capacity: Capacity | None = None) -> None:
    """Serve on ``sock`` (REST) and ``host:grpc_port`` until signalled (Ctrl-C, SIGTERM);
    ``on_ready(grpc_port_bound, capacity)`` once both listen."""
    import uvicorn
    from grpc import aio
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
    from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
    from kserve.protocol.grpc.servicer import InferenceServicer
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension

    repository = ModelRepository()
    for model in tail_models(tail, name):
        repository.update(model)
    dataplane = DataPlane(model_registry=repository)
    extension = ModelRepositoryExtension(model_registry=repository)
    capacity = capacity or Capacity.for_tail(tail)
    admission = Admission(capacity.slots, capacity.queue, limits.timeout_s)
    app = build_app(dataplane, extension, limits, served_configs(tail, name), admission)
    # no limit_concurrency: uvicorn counts open connections and running requests against
    # the one number and answers 503 past it, so idle sockets locked everyone out; the
    # connections have their own deadlines and ceiling (protect.protocol_class) and the
    # requests their queue (admission). No WebSocket: nothing here speaks it.
    # log level "error": uvicorn warns once per malformed request ("Invalid HTTP request
    # received."), and a flood of them filled a supervisor's undrained stderr pipe until
    # the write blocked the event loop, and with it every client
    config = uvicorn.Config(app, log_level="error", access_log=False,
                            http=protocol_class(capacity.connections), ws="none",
                            timeout_keep_alive=capacity.connections.idle_timeout_s,
                            lifespan="off")
    http = uvicorn.Server(config)
    tasks = [asyncio.create_task(http.serve(sockets=[sock]))]
    grpc_server, grpc_bound = None, None
    if grpc_port is not None:
        grpc_server = aio.server(
            interceptors=(_grpc_interceptor(limits, admission),
                          ExceptionToStatusInterceptor()),
            options=[("grpc.max_receive_message_length", limits.max_request_bytes),
                     ("grpc.max_send_message_length", limits.max_request_bytes)],
            # beyond the queue's own bound, grpc answers RESOURCE_EXHAUSTED itself
            maximum_concurrent_rpcs=capacity.slots + capacity.queue + 8)
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            InferenceServicer(dataplane, extension), grpc_server)
        from edgepipe.errors import InputError

        try:
            grpc_bound = grpc_server.add_insecure_port(f"{host}:{grpc_port}")
            reason = ""
        except RuntimeError as exc:  # grpcio raises where older versions returned 0
            grpc_bound, reason = 0, f" ({exc})"
        if not grpc_bound:
            http.should_exit = True
            await tasks[0]
            raise InputError(f"Cannot listen for gRPC on {host}:{grpc_port}{reason}.",
                             hint="pick another --grpc-port (0 takes any free one; -1 "
                                  "serves REST only).", reference="port-unavailable")
        await grpc_server.start()
    while not http.started:
        if tasks[0].done():
            tasks[0].result()
            raise OSError(f"The REST server did not start on {sock.getsockname()}.")
        await asyncio.sleep(0.02)
    if on_ready is not None:
        on_ready(grpc_bound, capacity)
    try:
        await tasks[0]
    finally:
        if grpc_server is not None:
            await grpc_server.stop(grace=1.0)
        tail.worker.shutdown(wait=False)


def quiet_kserve_logs() -> None:
    """kserve logs every handled error with a traceback at ERROR; a bad request is the
    client's, so keep them to one line at WARNING."""
    for name in ("kserve", "kserve.trace", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
