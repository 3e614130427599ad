"""The device side: the head here, the codes to a served tail over the Open Inference
Protocol, and each stage of each request timed on its own.

The request bodies are tritonclient's: ``InferenceServerClient.generate_request_body`` for
REST with the binary tensor extension, and tritonclient's gRPC protocol messages
(``service_pb2``) for gRPC. They travel on one kept-alive connection (``http.client``; a
gRPC channel sending the serialized message as is), so serializing, the round trip and
deserializing are each measured instead of hidden inside one client call, and the bytes on
the wire are the length of the very body sent. Per request:

- ``head``: the head artifact in its runtime (its output is already the 8-bit codes);
- ``encode``: zlib of the codes (``--zlib``, sent as UINT8), or the range coder's bitstream
  (``--entropy``, a split made with ``--entropy``, sent as UINT8 to ``NAME-entropy``),
  else nothing;
- ``serialize``: the protocol body; ``deserialize``: the answer read back into an array;
- ``round_trip``: from sending the body to having the whole answer;
- ``server``: the server's own receive + decode + queue + compute, from the answer's
  parameters (its clock); ``network`` = ``round_trip - server`` (derived, said so).
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import socket
import time
import zlib
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from edgepipe.errors import InputError, UnreachableError

SERVER_KEYS = ("receive_ns", "decode_ns", "queue_ns", "compute_ns")


@dataclass(frozen=True)
class Endpoint:
    protocol: str  # "http" or "grpc"
    host: str
    port: int
    model: str
    token: str | None = None

    @classmethod
    def parse(cls, url: str, model: str, token: str | None = None) -> Endpoint:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "grpc") or not parts.hostname:
            raise InputError(f"Cannot read the server address {url!r}.",
                             hint="write http://HOST:PORT (REST) or grpc://HOST:PORT.",
                             reference="bad-server-url")
        port = parts.port or (8080 if parts.scheme == "http" else 8081)
        return cls(parts.scheme, parts.hostname, port, model, token)


class ServerError(Exception):
    """The server answered with an error (its status and message)."""

    def __init__(self, status: Any, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class _NoDelayConnection(http.client.HTTPConnection):
    """http.client sends a request's headers and its body in two writes; with Nagle's
    algorithm on, the body then waits for the server's (delayed) ACK of the headers: a
    round trip on a real link, milliseconds even on loopback."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class HttpTransport:
    def __init__(self, endpoint: Endpoint, timeout_s: float = 30.0) -> None:
        self.endpoint = endpoint
        self.connection = _NoDelayConnection(endpoint.host, endpoint.port, timeout=timeout_s)
        self.path = f"/v2/models/{endpoint.model}/infer"

    def serialize(self, name: str, datatype: str, array: np.ndarray) -> tuple[bytes, dict]:
        import tritonclient.http as triton

        tensor = triton.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=True)
        # no output named: the model's outputs (one, whatever its name), in binary
        body, header_length = triton.InferenceServerClient.generate_request_body([tensor])
        headers = {"Content-Type": "application/octet-stream"}
        if header_length is not None:
            headers["Inference-Header-Content-Length"] = str(header_length)
        if self.endpoint.token:
            headers["Authorization"] = f"Bearer {self.endpoint.token}"
        return body, headers

    def send(self, body: bytes, headers: dict) -> tuple[bytes, dict]:
        self.connection.request("POST", self.path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise ServerError(response.status, data.decode("utf-8", "replace")[:500])
        return data, {k.lower(): v for k, v in response.getheaders()}

    @staticmethod
    def deserialize(data: bytes, headers: dict) -> tuple[np.ndarray, dict]:
        import tritonclient.http as triton

        length = headers.get("inference-header-content-length")
        result = triton.InferenceServerClient.parse_response_body(
            data, header_length=int(length) if length else None)
        response = result.get_response()
        return (result.as_numpy(response["outputs"][0]["name"]),
                response.get("parameters") or {})

    def close(self) -> None:
        self.connection.close()


class GrpcTransport:
    def __init__(self, endpoint: Endpoint, timeout_s: float = 30.0) -> None:
        import grpc

        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.channel = grpc.insecure_channel(f"{endpoint.host}:{endpoint.port}")
        # bytes in, bytes out: the message is serialized (and timed) by us
        self.call = self.channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        self.metadata = ((("authorization", f"Bearer {endpoint.token}"),)
                         if endpoint.token else ())

    def serialize(self, name: str, datatype: str, array: np.ndarray) -> tuple[bytes, dict]:
        from tritonclient.grpc import service_pb2

        request = service_pb2.ModelInferRequest(model_name=self.endpoint.model)
        tensor = request.inputs.add(name=name, datatype=datatype)
        tensor.shape.extend(array.shape)
        request.raw_input_contents.append(np.ascontiguousarray(array).tobytes())
        return request.SerializeToString(), {}

    def send(self, body: bytes, headers: dict) -> tuple[bytes, dict]:
        import grpc

        try:
            return self.call(body, timeout=self.timeout_s, metadata=self.metadata), {}
        except grpc.RpcError as exc:
            raise ServerError(exc.code().name, exc.details() or "") from None

    @staticmethod
    def deserialize(data: bytes, headers: dict) -> tuple[np.ndarray, dict]:
        from tritonclient.grpc import service_pb2

        response = service_pb2.ModelInferResponse.FromString(data)
        output = response.outputs[0]
        dtype = {"FP32": np.float32, "FP16": np.float16}.get(output.datatype, np.float32)
        logits = np.frombuffer(response.raw_output_contents[0], dtype=dtype).reshape(
            tuple(output.shape))
        parameters = {k: v.int64_param for k, v in response.parameters.items()}
        return logits, parameters

    def close(self) -> None:
        self.channel.close()


def transport(endpoint: Endpoint, timeout_s: float = 30.0) -> HttpTransport | GrpcTransport:
    return (HttpTransport if endpoint.protocol == "http" else GrpcTransport)(endpoint, timeout_s)


def run_remote(head: Any, link: HttpTransport | GrpcTransport, x: np.ndarray, *,
               compress: bool = False, coder: Any = None, warmup: int = 3) -> dict[str, Any]:
    """Every sample of ``x`` through ``head`` (a runtime session) here and the served tail;
    the logits and each request's stages in seconds and bytes. ``coder`` (an
    :class:`edgepipe.split.entropy.EntropyCoder`) sends each sample's bitstream."""
    stages: dict[str, list[float]] = {k: [] for k in (
        "head", "encode", "serialize", "round_trip", "server", "network", "deserialize",
        "total")}
    request_bytes, response_bytes, logits, codes_all, payload_bytes = [], [], [], [], []
    server_parts: dict[str, list[float]] = {k: [] for k in SERVER_KEYS}
    for index in range(-min(warmup, len(x)), len(x)):
        sample = x[index:index + 1] if index >= 0 else x[index + len(x):index + len(x) + 1]
        t0 = time.perf_counter()
        codes = _as_codes(head.run([sample])[0])
        t1 = time.perf_counter()
        if coder is not None:
            stream = coder.encode((codes.astype(np.int16) + 128).astype(np.uint8)[0])
            payload = np.frombuffer(stream, dtype=np.uint8)
            name, datatype = "codes_entropy", "UINT8"
        elif compress:
            payload = np.frombuffer(zlib.compress(codes.tobytes(), 9), dtype=np.uint8)
            name, datatype = "codes_zlib", "UINT8"
        else:
            payload, name, datatype = codes, "codes", "INT8"
        t2 = time.perf_counter()
        body, headers = link.serialize(name, datatype, payload)
        t3 = time.perf_counter()
        answer, answer_headers = link.send(body, headers)
        t4 = time.perf_counter()
        out, parameters = link.deserialize(answer, answer_headers)
        t5 = time.perf_counter()
        if index < 0:
            continue  # warm-up: connections, first-run allocations
        server = sum(float(parameters.get(k, 0)) for k in SERVER_KEYS) / 1e9
        for key, value in (("head", t1 - t0), ("encode", t2 - t1), ("serialize", t3 - t2),
                           ("round_trip", t4 - t3), ("server", server),
                           ("network", t4 - t3 - server), ("deserialize", t5 - t4),
                           ("total", t5 - t0)):
            stages[key].append(value)
        for key in SERVER_KEYS:
            server_parts[key].append(float(parameters.get(key, 0)) / 1e9)
        request_bytes.append(len(body))
        payload_bytes.append(payload.nbytes)
        response_bytes.append(len(answer))
        logits.append(out)
        codes_all.append(codes)
    return {"logits": np.concatenate(logits), "codes": np.concatenate(codes_all),
            "requests": {"timed": len(x), "warm_up": min(warmup, len(x))},
            "stages": {k: summarize(v) for k, v in stages.items()},
            "server_parts": {k.removesuffix("_ns"): summarize(v)
                             for k, v in server_parts.items()},
            "bytes": {"request_mean": float(np.mean(request_bytes)),
                      "request_max": int(np.max(request_bytes)),
                      "response_mean": float(np.mean(response_bytes)),
                      "payload_mean": float(np.mean(payload_bytes)),
                      "payload_p95": float(np.percentile(payload_bytes, 95)),
                      "counted": "the length of each request and response body sent; "
                                 "payload: the tensor's own bytes in it (codes, zlib stream "
                                 "or bitstream)"}}


def _as_codes(array: np.ndarray) -> np.ndarray:
    """The head's output as int8 codes (a runtime may hand back an int8 output
    dequantized to float; its values are whole numbers either way)."""
    if array.dtype == np.int8:
        return array
    return np.rint(array).astype(np.int8)


def _measure(session: Any, endpoint: Endpoint, x: np.ndarray, compress: bool,
             timeout_s: float, shown: Endpoint, coder: Any = None) -> dict[str, Any]:
    link = transport(endpoint, timeout_s)
    try:
        return run_remote(session, link, x, compress=compress, coder=coder)
    except (ConnectionError, OSError) as exc:
        raise UnreachableError(f"Cannot reach the server at {shown.protocol}://{shown.host}:"
                         f"{shown.port}: {exc}.", hint="start it with `edgepipe serve "
                         "OUT` and check the address.", reference="server-unreachable") from exc
    except ServerError as exc:
        raise InputError(f"The server refused the request ({exc.status}): {exc.message}",
                         hint="check --model, the token ($EDGEPIPE_SERVE_TOKEN) and that the "
                              "server serves this split.", reference="server-refused") from exc
    finally:
        link.close()


def summarize(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    return {"mean_s": float(array.mean()), "min_s": float(array.min()),
            "p50_s": float(np.percentile(array, 50)),
            "p90_s": float(np.percentile(array, 90)), "p99_s": float(np.percentile(array, 99)),
            "max_s": float(array.max()), "count": int(array.size)}


HEAD_ORDER = ("head.int8.tflite", "head.tflite", "head.onnx", "head.xml")


@dataclass
class RemoteRun:
    """What ``split run`` measured: where it ran, on which samples, the accuracy and the
    agreement with the local tail; ``measured`` holds the timings (stages, server parts,
    requests, bytes, and the emulated link when there was one), flat in :meth:`to_dict`."""

    server: str
    model: str
    head: str
    head_runtime: str
    compressed: bool
    samples: int
    data: dict[str, Any]
    accuracy: float | None
    manifest_accuracy: float | None
    against_local_tail: dict[str, Any] | None
    measured: dict[str, Any] = field(default_factory=dict)
    encoding: str = "codes"  # what was sent: codes, zlib or entropy (bitstreams)

    def to_dict(self) -> dict[str, Any]:
        document = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "measured"}
        return {**document, **self.measured}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> RemoteRun:
        names = {f.name for f in fields(cls)} - {"measured"}
        return cls(**{k: v for k, v in document.items() if k in names},
                   measured={k: v for k, v in document.items() if k not in names})


def remote_split(split_dir: Any, endpoint: Endpoint, *, data: str | None = None,
                 head: str | None = None, compress: bool = False, limit: int | None = None,
                 timeout_s: float = 30.0, link: Any = None,
                 entropy: bool = False) -> RemoteRun:
    """``split run``: the eval split of the data (the split run's own, by default) through the
    head here and the served tail; accuracy, agreement with the local tail, stages, bytes.

    ``link`` (a :class:`edgepipe.split.plan.Link`) sends the traffic through a
    :class:`edgepipe.serve.link.PacedLink` of that bandwidth and round trip, and sets the
    measured end to end beside what the planner's link model predicts from this run's
    measured head and tail times."""
    import json
    from pathlib import Path

    from edgepipe.data import splits_for
    from edgepipe.recorded import normalize_for
    from edgepipe.runtime import open_artifact

    folder = Path(split_dir)
    manifest = folder / "manifest.json"
    steps = ([s for s in json.loads(manifest.read_text()).get("steps", [])
              if s.get("step") == "split"] if manifest.is_file() else [])
    if not steps:
        raise InputError(f"{folder} is not the output of `edgepipe split`.",
                         hint="give the OUT directory of `edgepipe split`.",
                         reference="not-a-split-run")
    config = steps[-1]["config"]
    coder = None
    if entropy:
        from edgepipe.split.entropy import CodeTables, EntropyCoder

        wire = steps[-1]["result"].get("wire") or {}
        if "entropy" not in wire:
            raise InputError(f"{folder} was split without --entropy: it has no code tables "
                             "to write bitstreams with.",
                             hint="split again with --entropy, or send the codes (--zlib or "
                                  "as they are).", reference="split-without-entropy")
        tables = folder / wire["entropy"]["tables"]
        if not tables.is_file():
            raise InputError(f"{folder} has no {tables.name} (the code tables of its "
                             "bitstreams).", hint="run `edgepipe split ... --entropy` again.",
                             reference="split-without-entropy")
        coder = EntropyCoder(CodeTables.load(tables), tuple(wire["shape"][1:]))
    head_path = folder / head if head else next(
        (folder / n for n in HEAD_ORDER if (folder / n).is_file()), folder / "head.onnx")
    # no spinning: ORT's worker threads would hold the cores after the head's run while
    # this process sends the request (measured: ~3 ms later sends on 2 cores)
    session = open_artifact(head_path, spin=False)
    source = data or config.get("data")
    if not source:
        raise InputError("No data to run on.", hint="give --data.", reference="split-needs-data")
    # prepared as the head was made (its record), else as the split step says
    normalize = normalize_for(head_path, source, config.get("normalize"))
    samples = splits_for(source, session.inputs, seed=int(config.get("seed", 0)),
                         normalize=normalize).eval
    name = session.inputs[0].name
    x, labels = samples.inputs[name], samples.labels
    if limit is not None:
        x = x[:limit]
        labels = None if labels is None else labels[:limit]
    emulated = None
    with contextlib.ExitStack() as stack:
        target = endpoint
        if link is not None:
            from edgepipe.serve.link import PacedLink

            emulated = stack.enter_context(PacedLink(endpoint.host, endpoint.port,
                                                     link.bandwidth_bps, link.rtt_s))
            target = dataclasses.replace(endpoint, host="127.0.0.1", port=emulated.port)
        measured = _measure(session, target, x, compress, timeout_s, shown=endpoint,
                            coder=coder)
    logits = measured.pop("logits")
    codes = measured.pop("codes")
    local = None
    from edgepipe import formats

    tails = sorted((f for f in formats.all_formats() if f.exportable), key=lambda f: not f.servable)
    for tail_name in [f"tail{f.suffix}" for f in tails]:  # a tail the server could run first
        if (folder / tail_name).is_file():
            tail_session = open_artifact(folder / tail_name)
            local_logits = np.concatenate([tail_session.run([codes[i:i + 1]])[0]
                                           for i in range(len(codes))])
            local = {"tail": tail_name,
                     "prediction_agreement": float(
                         (local_logits.argmax(1) == logits.argmax(1)).mean()),
                     "max_abs_logit_diff": float(np.abs(local_logits - logits).max())}
            break
    accuracy = None if labels is None else float((logits.argmax(1) == labels).mean())
    if link is not None and emulated is not None:
        packed = steps[-1]["result"]["bytes_per_sample"]["packed_bytes"]
        stages = measured["stages"]
        predicted = (stages["head"]["p50_s"] + link.transfer_s(packed)
                     + measured["server_parts"]["compute"]["p50_s"])
        # the same model with what really crossed: the protocol's headers and framing and
        # the answer both ways, and the server's whole share (receive, decode, queue, tail)
        requests = measured["requests"]["timed"] + measured["requests"]["warm_up"]
        per_request = (emulated.bytes["up"] + emulated.bytes["down"]) / max(requests, 1)
        parts = measured["server_parts"]
        on_wire = (stages["head"]["p50_s"] + stages["encode"]["p50_s"]
                   + stages["serialize"]["p50_s"] + link.transfer_s(per_request)
                   + sum(parts[k]["p50_s"] for k in ("decode", "queue", "compute"))
                   + stages["deserialize"]["p50_s"])
        total = stages["total"]["p50_s"]
        measured["link"] = {
            "emulated": True, "bandwidth_bps": link.bandwidth_bps, "rtt_s": link.rtt_s,
            "bytes_through": {"up": emulated.bytes["up"], "down": emulated.bytes["down"]},
            "bytes_per_request": per_request, "connections": emulated.connections,
            "planner_prediction_s": predicted, "measured_p50_s": total,
            "error": (total - predicted) / predicted,
            "prediction": "split plan's link model (packed codes x 8 / bandwidth + round "
                          "trip) with this run's measured head and tail p50",
            "wire_prediction_s": on_wire, "wire_error": (total - on_wire) / on_wire,
            "wire_prediction": "the same link model with the bytes that went through the "
                               "link per request (both ways, protocol included; warm-up requests "
                               "counted), this run's client stages and the server's decode, "
                               "queue and tail (its receive is the link's serialization, "
                               "already counted): what is left is the software stack outside "
                               "those timings"}
    return RemoteRun(
        server=f"{endpoint.protocol}://{endpoint.host}:{endpoint.port}", model=endpoint.model,
        head=head_path.name, head_runtime=session.name, compressed=compress,
        samples=int(len(x)),
        data={"source": samples.source, "split": "eval", "seed": int(config.get("seed", 0))},
        accuracy=accuracy,
        manifest_accuracy=steps[-1]["result"]["accuracy"].get("split_torch"),
        against_local_tail=local, measured=measured,
        encoding="entropy" if coder is not None else "zlib" if compress else "codes")
