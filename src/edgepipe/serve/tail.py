"""The tail of a split run directory as a kserve model: the wire format, request checks,
the tail in ONNX Runtime or OpenVINO, and the server-side timing of each request.

The device sends the bottleneck's codes as an INT8 tensor (code - 128; the dequantizing
scale is inside the tail), or the batch's codes as one zlib stream in a UINT8 tensor of
the stream's length to the ``NAME-zlib`` model, or, for a split made with ``--entropy``,
the samples' range-coded bitstreams one after the other in a UINT8 tensor to the
``NAME-entropy`` model (decoded here with the split's tables; a truncated or corrupted
bitstream fails its length or CRC32 check and is answered 400). (Not BYTES: kserve 0.21's REST decoder
turns binary BYTES inputs back into UTF-8 strings and fails on compressed data.) Every request's answer carries the server's own timing as response
parameters, in integer nanoseconds (gRPC parameters carry no floats): ``receive_ns`` (from
the request's arrival to the model: reading the body and kserve's protocol decoding),
``decode_ns`` (checking the tensor; unpacking zlib), ``queue_ns`` (waiting in the server's
queue and for the tail's worker thread) and ``compute_ns`` (the tail in its runtime); REST also sends them as a
``Server-Timing`` header.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from kserve.errors import InferenceError, InvalidInput

from edgepipe.serve.wire import Wire

# perf_counter() when the request reached the server (set by the server's middleware and
# gRPC wrapper, read by the model)
ARRIVAL: contextvars.ContextVar[float | None] = contextvars.ContextVar("arrival", default=None)
# seconds the request waited in the server's queue for a place in service (set with ARRIVAL
# moved on by as much, so that receive_ns stays reading and decoding, and queue_ns has it)
QUEUED: contextvars.ContextVar[float] = contextvars.ContextVar("queued", default=0.0)

MAX_BATCH = 1024
OIP_DTYPES = {"int8": "INT8", "uint8": "UINT8", "float32": "FP32", "int64": "INT64",
              "int32": "INT32", "float16": "FP16"}


class RequestError(InvalidInput):
    """A request the tail cannot take (answered 400 over REST, INVALID_ARGUMENT over gRPC)."""


class TailFailure(InferenceError):
    """The tail failed on a request that passed the checks: the server's fault (500)."""


class Tail:
    """The tail in its runtime, run by one worker thread (requests queue for it)."""

    def __init__(self, artifact: Path, wire: Wire, threads: int | None = None) -> None:
        from edgepipe.runtime import default_threads, open_artifact

        # no spinning: ORT's worker threads would hold the cores after each run, and the
        # server's own HTTP/gRPC loop, which must write the answer, shares them
        self.session = open_artifact(artifact, threads, spin=False)
        self.threads = threads or default_threads()  # the cores the runtime computes on
        self.wire = wire
        self.input = self.session.inputs[0]
        self.output = self.session.outputs[0]
        self.static_batch = isinstance(self.input.shape[0], int)
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tail")
        self.coder = wire.coder()  # the entropy coder, for an entropy-coded split

    def check(self, array: np.ndarray) -> np.ndarray:
        expected = tuple(self.wire.shape[1:])
        if array.ndim != len(self.wire.shape) or tuple(array.shape[1:]) != expected:
            raise RequestError(f"The input has shape {list(array.shape)}; the tail takes "
                               f"[N, {', '.join(map(str, expected))}] ({self.wire.dtype} codes "
                               f"of the bottleneck at {self.wire.cut}).")
        if array.shape[0] < 1:
            raise RequestError("The input has a batch of 0 samples.")
        return array

    def run(self, codes: np.ndarray) -> np.ndarray:
        if self.static_batch and codes.shape[0] != self.input.shape[0]:
            return np.concatenate([self.session.run([codes[i:i + 1]])[0]
                                   for i in range(codes.shape[0])])
        return self.session.run([codes])[0]


ENCODINGS = {"codes": "", "zlib": "-zlib", "entropy": "-entropy"}
STREAM_INPUTS = {"zlib": "codes_zlib", "entropy": "codes_entropy"}


def model_names(tail: Tail, name: str) -> dict[str, str]:
    """Each served model's name by what it takes: codes, zlib, and entropy where the split
    is entropy-coded."""
    return {encoding: name + suffix for encoding, suffix in ENCODINGS.items()
            if encoding != "entropy" or tail.coder is not None}


def tail_models(tail: Tail, name: str) -> list[Any]:
    """The kserve models: ``name`` (INT8 codes), ``name-zlib`` (the same, zlib'd) and, for
    an entropy-coded split, ``name-entropy`` (range-coded bitstreams)."""
    from kserve import InferOutput, InferRequest, InferResponse, Model

    wire = tail.wire
    dims = [-1, *wire.shape[1:]]
    oip = OIP_DTYPES[wire.dtype]

    class TailModel(Model):
        def __init__(self, model_name: str, encoding: str) -> None:
            super().__init__(model_name, return_response_headers=True)
            self.encoding = encoding
            self.ready = True

        def get_input_types(self) -> list[dict]:
            if self.encoding in STREAM_INPUTS:
                return [{"name": STREAM_INPUTS[self.encoding], "datatype": "UINT8",
                         "shape": [-1]}]
            return [{"name": "codes", "datatype": oip, "shape": dims}]

        def get_output_types(self) -> list[dict]:
            return [{"name": tail.output.name, "datatype": OIP_DTYPES.get(tail.output.dtype, "FP32"),
                     "shape": [-1, *tail.output.shape[1:]]}]

        def _decode(self, request: InferRequest) -> np.ndarray:
            if len(request.inputs) != 1:
                raise RequestError(f"The request has {len(request.inputs)} inputs; the model "
                                   f"{self.name!r} takes one.")
            given = request.inputs[0]
            expected = self.get_input_types()[0]
            if given.datatype != expected["datatype"]:
                raise RequestError(f"The input {given.name!r} is {given.datatype}; the model "
                                   f"{self.name!r} takes {expected['datatype']}.")
            try:
                array = given.as_numpy()
            except Exception as exc:  # kserve raises several kinds for bad contents
                raise RequestError(f"The input's data cannot be read as {given.datatype} of "
                                   f"shape {given.shape}: {exc}") from exc
            if self.encoding == "codes":
                return tail.check(array)
            if self.encoding == "entropy":
                return tail.check(_decode_bitstreams(tail.coder, array))
            per_sample = int(np.prod(wire.shape[1:]))
            inflater = zlib.decompressobj()
            try:  # bounded: a zlib bomb stops at the size of one batch the limit allows
                data = inflater.decompress(array.reshape(-1).tobytes(), MAX_BATCH * per_sample)
            except zlib.error as exc:
                raise RequestError(f"The input is not zlib data: {exc}") from exc
            if inflater.unconsumed_tail or not inflater.eof:
                raise RequestError("The zlib stream is incomplete or inflates beyond "
                                   f"{MAX_BATCH} samples.")
            if not data or len(data) % per_sample:
                raise RequestError(f"The zlib stream inflates to {len(data)} bytes, not a "
                                   f"whole number of samples of {per_sample} codes.")
            codes = np.frombuffer(data, dtype=wire.dtype).reshape(-1, *wire.shape[1:])
            return tail.check(codes)

        async def predict(self, payload: InferRequest, headers: dict | None = None,
                          response_headers: dict | None = None) -> InferResponse:
            arrival = ARRIVAL.get()
            start = time.perf_counter()
            codes = self._decode(payload)
            decoded = time.perf_counter()
            loop = asyncio.get_running_loop()
            logits, began, ended = await loop.run_in_executor(tail.worker, _timed, tail, codes)
            timing = {"receive_ns": round((start - arrival) * 1e9) if arrival else 0,
                      "decode_ns": round((decoded - start) * 1e9),
                      "queue_ns": round((began - decoded + QUEUED.get()) * 1e9),
                      "compute_ns": round((ended - began) * 1e9)}
            output = InferOutput(name=tail.output.name, shape=list(logits.shape),
                                 datatype=OIP_DTYPES.get(str(logits.dtype), "FP32"))
            output.set_data_from_numpy(logits, binary_data=True)
            if response_headers is not None:
                response_headers["server-timing"] = ", ".join(
                    f"{k.removesuffix('_ns')};dur={v / 1e6:.3f}" for k, v in timing.items())
            return InferResponse(response_id=payload.id or str(uuid.uuid4()),
                                 model_name=self.name, infer_outputs=[output],
                                 parameters=timing)

    return [TailModel(model, encoding) for encoding, model in model_names(tail, name).items()]


def _decode_bitstreams(coder: Any, array: np.ndarray) -> np.ndarray:
    """The int8 codes (code - 128) of a batch of bitstreams; 400 for any that fails."""
    from edgepipe.split.entropy import BitstreamError

    data = array.reshape(-1).tobytes()
    out, offset = [], 0
    try:
        while offset < len(data):
            if len(out) == MAX_BATCH:
                raise RequestError(f"The input holds more than {MAX_BATCH} bitstreams.")
            codes, offset = coder.decode_one(data, offset)
            out.append(codes)
    except BitstreamError as exc:
        raise RequestError(f"Bitstream {len(out) + 1} cannot be decoded: {exc}") from exc
    except (ValueError, RuntimeError) as exc:  # the coder on a stream that passed its CRC
        raise RequestError(f"Bitstream {len(out) + 1} cannot be decoded: {exc}") from exc
    if not out:
        raise RequestError("The input holds no bitstream.")
    return (np.stack(out).astype(np.int16) - 128).astype(np.int8)


def _timed(tail: Tail, codes: np.ndarray) -> tuple[np.ndarray, float, float]:
    began = time.perf_counter()
    try:
        logits = tail.run(codes)
    except Exception as exc:  # the request was checked: a failure here is the server's
        raise TailFailure(f"The tail failed in {tail.session.name}: {exc}") from exc
    return logits, began, time.perf_counter()
