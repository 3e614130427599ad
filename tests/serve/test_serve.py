"""The real tail server (`edgepipe serve`, a subprocess on 127.0.0.1) against tritonclient
(REST and gRPC), every bad request answered 4xx with the server alive after, the token,
and `edgepipe split run` end to end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest

TOKEN = "test-token-0123456789abcdef"
OUT = "output"  # the tail's output name, as exported
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def start_server(split_dir, *args: str, token: str | None = TOKEN):
    """``edgepipe serve`` on free ports; (process, ready document), bounded to 90 s."""
    env = {**os.environ}
    env.pop("EDGEPIPE_SERVE_TOKEN", None)
    if token:
        env["EDGEPIPE_SERVE_TOKEN"] = token
    process = subprocess.Popen(
        [sys.executable, "-m", "edgepipe", "serve", str(split_dir), "--port", "0",
         "--grpc-port", "0", "--json", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=env, text=True)
    deadline = time.monotonic() + 90
    line = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.strip().startswith("{") or process.poll() is not None:
            break
    if not line.strip():
        process.kill()
        raise AssertionError(f"the server did not start: {process.stderr.read()[-3000:]}")
    return process, json.loads(line)["ready"]


def stop(process) -> str:
    process.terminate()
    try:
        _, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate(timeout=10)
    return err


@pytest.fixture(scope="module")
def server(split_dir):
    process, ready = start_server(split_dir, "--timeout", "3", "--max-request-bytes", "65536")
    yield ready
    err = stop(process)
    assert "Traceback" not in err, err[-3000:]


def local_logits(split_dir, codes: np.ndarray) -> np.ndarray:
    from edgepipe.runtime import open_artifact

    tail = open_artifact(split_dir / "tail.onnx")
    return np.concatenate([tail.run([codes[i:i + 1]])[0] for i in range(len(codes))])


def some_codes(split_dir, count: int = 16) -> np.ndarray:
    from edgepipe.data import load_data_for_model
    from edgepipe.runtime import open_artifact

    head = open_artifact(split_dir / "head.onnx")
    x = load_data_for_model("builtin:digits", head.inputs).inputs[head.inputs[0].name][:count]
    return np.concatenate([head.run([x[i:i + 1]])[0] for i in range(count)])


def test_tritonclient_http_and_grpc_match_the_local_tail(server, split_dir):
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    codes = some_codes(split_dir)
    assert codes.dtype == np.int8 and codes.shape[1:] == (4, 8, 8)
    expected = local_logits(split_dir, codes)

    rest = httpclient.InferenceServerClient(server["http"].removeprefix("http://"))
    assert rest.is_server_live() and rest.is_model_ready("tail", headers=AUTH)
    meta = rest.get_model_metadata("tail", headers=AUTH)
    assert meta["inputs"] == [{"name": "codes", "datatype": "INT8", "shape": [-1, 4, 8, 8]}]
    tensor = httpclient.InferInput("codes", list(codes.shape), "INT8")
    tensor.set_data_from_numpy(codes, binary_data=True)
    answer = rest.infer("tail", [tensor], headers=AUTH)
    np.testing.assert_allclose(answer.as_numpy(OUT), expected, atol=1e-4)
    timing = answer.get_response()["parameters"]
    assert timing["compute_ns"] > 0 and set(timing) == {"receive_ns", "decode_ns", "queue_ns",
                                                        "compute_ns"}

    stream = np.frombuffer(zlib.compress(codes.tobytes(), 9), dtype=np.uint8)
    packed = httpclient.InferInput("codes_zlib", [len(stream)], "UINT8")
    packed.set_data_from_numpy(stream, binary_data=True)
    np.testing.assert_allclose(rest.infer("tail-zlib", [packed], headers=AUTH)
                               .as_numpy(OUT), expected, atol=1e-4)

    rpc = grpcclient.InferenceServerClient(server["grpc"])
    metadata = {"authorization": f"Bearer {TOKEN}"}
    assert rpc.is_server_live()
    tensor = grpcclient.InferInput("codes", list(codes.shape), "INT8")
    tensor.set_data_from_numpy(codes)
    answer = rpc.infer("tail", [tensor], headers=metadata)
    np.testing.assert_allclose(answer.as_numpy(OUT), expected, atol=1e-4)
    assert answer.get_response().parameters["compute_ns"].int64_param > 0


def _post(server, path: str, body: bytes, headers: dict | None = None) -> tuple[int, str]:
    import http.client

    host, port = server["http"].removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("POST", path, body=body, headers={
        "Content-Type": "application/json", **AUTH, **(headers or {})})
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    return response.status, text


def _request(shape, datatype="INT8", data=None, name="codes") -> bytes:
    count = int(np.prod(shape)) if shape else 0
    return json.dumps({"inputs": [{"name": name, "shape": shape, "datatype": datatype,
                                   "data": [0] * count if data is None else data}]}).encode()


@pytest.mark.parametrize(("path", "body", "headers", "status", "words"), [
    ("/v2/models/nope/infer", _request([1, 4, 8, 8]), None, 404, "nope"),
    ("/v2/models/tail/infer", _request([1, 4, 8, 8], "FP32"), None, 400, "takes INT8"),
    ("/v2/models/tail/infer", _request([1, 4, 8, 7]), None, 400, "[N, 4, 8, 8]"),
    ("/v2/models/tail/infer", _request([1, 4, 8, 8], data=[0] * 10), None, 400, "reshape"),
    ("/v2/models/tail/infer", _request([1, 4, 8, 8], data=[999] * 256), None, 400, "INT8"),
    ("/v2/models/tail/infer", _request([0, 4, 8, 8]), None, 400, "batch of 0"),
    ("/v2/models/tail/infer", b"{not json", None, 400, "not an Open Inference"),
    ("/v2/models/tail/infer", b'{"foo": 1}', None, 400, "inputs"),
    ("/v2/models/tail/infer", b'{"inputs": []}xx', {"Content-Type": "application/octet-stream",
                                                    "Inference-Header-Content-Length": "999"},
     400, ""),
    ("/v2/models/tail-zlib/infer", _request([3], "UINT8", [1, 2, 3], "codes_zlib"), None, 400,
     "zlib"),
    ("/v2/models/tail-zlib/infer", _request([4], "BYTES", ["\u00ff", "a", "b", "c"],
                                            "codes_zlib"), None, 400, ""),
    ("/v2/models/tail/infer", b"x" * 70000, None, 413, "at most 65,536"),
    ("/v2/models/tail/infer", _request([1, 4, 8, 8]), {"Authorization": ""}, 401, "token"),
    ("/v2/models/tail/infer", _request([1, 4, 8, 8]), {"Authorization": "Bearer nope"}, 401,
     "token"),
])
def test_bad_requests_get_a_4xx_and_the_server_lives_on(server, path, body, headers, status,
                                                        words):
    got, text = _post(server, path, body, headers)
    assert got == status, text
    assert words in text and "error" in text
    ok, answer = _post(server, "/v2/models/tail/infer", _request([1, 4, 8, 8]))
    assert ok == 200, answer


def test_grpc_token_and_bad_shape(server):
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    rpc = grpcclient.InferenceServerClient(server["grpc"])
    tensor = grpcclient.InferInput("codes", [1, 4, 8, 8], "INT8")
    tensor.set_data_from_numpy(np.zeros((1, 4, 8, 8), np.int8))
    with pytest.raises(InferenceServerException, match="UNAUTHENTICATED"):
        rpc.infer("tail", [tensor])
    wrong = grpcclient.InferInput("codes", [1, 4, 8, 7], "INT8")
    wrong.set_data_from_numpy(np.zeros((1, 4, 8, 7), np.int8))
    with pytest.raises(InferenceServerException, match="INVALID_ARGUMENT"):
        rpc.infer("tail", [wrong], headers={"authorization": f"Bearer {TOKEN}"})
    assert rpc.infer("tail", [tensor], headers={"authorization": f"Bearer {TOKEN}"}) \
        .as_numpy(OUT).shape == (1, 10)


def test_a_body_that_stops_arriving_gets_408(server):
    host, port = server["http"].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(b"POST /v2/models/tail/infer HTTP/1.1\r\nHost: x\r\nAuthorization: "
                           + f"Bearer {TOKEN}".encode() + b"\r\nContent-Type: application/json"
                           b"\r\nContent-Length: 100\r\n\r\n{\"inp")
        started = time.monotonic()
        answer = connection.recv(200)
    assert answer.startswith(b"HTTP/1.1 408") and time.monotonic() - started < 8
    assert _post(server, "/v2/models/tail/infer", _request([1, 4, 8, 8]))[0] == 200


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_split_run_against_the_server(cli, server, split_dir, protocol, monkeypatch):
    monkeypatch.setenv("EDGEPIPE_SERVE_TOKEN", TOKEN)
    url = server["http"] if protocol == "http" else f"grpc://{server['grpc']}"
    result = cli("split", "run", split_dir, "--server", url, "--samples", "40", "--json")
    assert result.code == 0, result
    r = result.json()["result"]
    assert r["samples"] == 40 and r["against_local_tail"]["prediction_agreement"] == 1.0
    assert r["against_local_tail"]["max_abs_logit_diff"] < 1e-4
    assert r["accuracy"] > 0.85
    stages = r["stages"]
    assert stages["round_trip"]["count"] == 40 and stages["server"]["p50_s"] > 0
    assert stages["round_trip"]["p50_s"] >= stages["server"]["p50_s"]
    # the codes (256 bytes) plus the protocol's header: what was sent, counted
    assert 256 < r["bytes"]["request_mean"] < 1024
    packed = cli("split", "run", split_dir, "--server", url, "--samples", "20", "--zlib", "--json")
    assert packed.code == 0, packed
    assert packed.json()["result"]["against_local_tail"]["prediction_agreement"] == 1.0
    assert packed.json()["result"]["bytes"]["request_mean"] < r["bytes"]["request_mean"]


def test_split_run_through_an_emulated_link(cli, server, split_dir, monkeypatch):
    monkeypatch.setenv("EDGEPIPE_SERVE_TOKEN", TOKEN)
    result = cli("split", "run", split_dir, "--server", server["http"], "--samples", "10",
                 "--link-bandwidth", "5Mbps", "--link-rtt", "10ms", "--json")
    assert result.code == 0, result
    r = result.json()["result"]
    assert r["against_local_tail"]["prediction_agreement"] == 1.0
    link = r["link"]
    assert link["emulated"] and link["bandwidth_bps"] == 5e6 and link["rtt_s"] == 0.01
    # every request paid the round trip and its bytes at 5 Mbps, both ways
    least = 0.01 + r["bytes"]["request_mean"] * 8 / 5e6 + r["bytes"]["response_mean"] * 8 / 5e6
    assert r["stages"]["round_trip"]["min_s"] >= least
    assert link["bytes_through"]["up"] >= 13 * r["bytes"]["request_mean"]  # 3 warm-up + 10
    assert link["measured_p50_s"] > link["planner_prediction_s"] > 0.01
    # fed with what really crossed (HTTP headers, the answer), the same model comes closer
    assert link["bytes_per_request"] > r["bytes"]["request_mean"] + r["bytes"]["response_mean"]
    assert link["planner_prediction_s"] < link["wire_prediction_s"] <= link["measured_p50_s"]
    assert abs(link["wire_error"]) < abs(link["error"])


def test_split_run_errors(cli, server, split_dir, monkeypatch):
    monkeypatch.delenv("EDGEPIPE_SERVE_TOKEN", raising=False)
    refused = cli("split", "run", split_dir, "--server", server["http"], "--samples", "2")
    assert refused.code == 1 and "server-refused" in refused.stderr and "401" in refused.stderr
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    down = cli("split", "run", split_dir, "--server", f"http://127.0.0.1:{port}", "--samples", "2")
    assert down.code == 5 and "server-unreachable" in down.stderr  # EXIT_UNREACHABLE


def serve_cli(*args, token: str | None = None) -> subprocess.CompletedProcess:
    """`edgepipe serve` in its own process: kserve's and tritonclient's gRPC modules
    register the same protobuf names, so one process cannot import both (the server never
    imports tritonclient, nor the device side kserve)."""
    env = {k: v for k, v in os.environ.items() if k != "EDGEPIPE_SERVE_TOKEN"}
    if token is not None:
        env["EDGEPIPE_SERVE_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "edgepipe", "serve", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


def test_serve_refuses_bad_setups(tmp_path, split_dir):
    not_split = serve_cli(tmp_path)
    assert not_split.returncode == 1 and "not-a-split-run" in not_split.stderr
    weak = serve_cli(split_dir, token="short")
    assert weak.returncode == 1 and "weak-token" in weak.stderr
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "manifest.json").write_text((split_dir / "manifest.json").read_text())
    no_tail = serve_cli(bare)
    assert no_tail.returncode == 1 and "no-tail-artifact" in no_tail.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = serve_cli(split_dir, "--port", busy.getsockname()[1])
    assert taken.returncode == 1 and "port-unavailable" in taken.stderr
    assert "Traceback" not in taken.stderr


def test_openvino_tail_serves_the_same(split_dir):
    process, ready = start_server(split_dir, "--runtime", "openvino", token=None)
    try:
        import tritonclient.http as httpclient

        codes = some_codes(split_dir, 8)
        rest = httpclient.InferenceServerClient(ready["http"].removeprefix("http://"))
        tensor = httpclient.InferInput("codes", list(codes.shape), "INT8")
        tensor.set_data_from_numpy(codes)
        got = rest.infer("tail", [tensor]).as_numpy(OUT)
        assert ready["runtime"] == "openvino"
        np.testing.assert_allclose(got, local_logits(split_dir, codes), atol=1e-3)
    finally:
        stop(process)


def test_executorch_tail_serves_the_same(split_dir):
    """A .pte tail (batch fixed at 1 in the program) serves a batch of 8 over REST and gRPC,
    one sample at a time inside, as the ONNX tail computes it."""
    pytest.importorskip("executorch", reason="the executorch extra is not installed")
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    process, ready = start_server(split_dir, "--runtime", "executorch", token=None)
    try:
        codes = some_codes(split_dir, 8)
        want = local_logits(split_dir, codes)
        rest = httpclient.InferenceServerClient(ready["http"].removeprefix("http://"))
        tensor = httpclient.InferInput("codes", list(codes.shape), "INT8")
        tensor.set_data_from_numpy(codes)
        assert ready["runtime"] == "executorch" and ready["artifact"].endswith("tail.pte")
        np.testing.assert_allclose(rest.infer("tail", [tensor]).as_numpy(OUT), want,
                                   atol=1e-3)
        rpc = grpcclient.InferenceServerClient(ready["grpc"])
        tensor = grpcclient.InferInput("codes", list(codes.shape), "INT8")
        tensor.set_data_from_numpy(codes)
        np.testing.assert_allclose(rpc.infer("tail", [tensor]).as_numpy(OUT), want, atol=1e-3)
    finally:
        err = stop(process)
    assert "Traceback" not in err, err[-3000:]


def test_export_triton_matches_the_served_model(cli, server, split_dir, tmp_path):
    import onnx
    import tritonclient.http as httpclient
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    repo = tmp_path / "repo"
    made = cli("export-triton", split_dir, "-o", repo, "--storage-uri", "s3://bucket/models",
               "--json")
    assert made.code == 0, made
    config = text_format.Parse((repo / "models/tail/config.pbtxt").read_text(),
                               model_config_pb2.ModelConfig())  # strict: unknown fields fail
    assert (repo / "models/tail/1/model.onnx").read_bytes() == (split_dir / "tail.onnx") \
        .read_bytes()
    graph = onnx.load(str(repo / "models/tail/1/model.onnx")).graph
    onnx_in = [d.dim_value or -1 for d in graph.input[0].type.tensor_type.shape.dim]
    onnx_out = [d.dim_value or -1 for d in graph.output[0].type.tensor_type.shape.dim]
    assert onnx_in[0] == -1, "the split exports its tail with a dynamic batch"
    assert config.platform == "onnxruntime_onnx" and config.max_batch_size == 64
    assert config.HasField("dynamic_batching")
    (given,), (out,) = config.input, config.output
    assert given.name == graph.input[0].name and list(given.dims) == onnx_in[1:]
    assert model_config_pb2.DataType.Name(given.data_type) == "TYPE_INT8"
    assert out.name == graph.output[0].name and list(out.dims) == onnx_out[1:]
    assert config.parameters["edgepipe_zero_point"].string_value == "-128"
    # what the device client reads from our server is what Triton would say
    meta = httpclient.InferenceServerClient(server["http"].removeprefix("http://")) \
        .get_model_metadata("tail", headers=AUTH)
    assert meta["inputs"][0]["name"] == given.name and meta["inputs"][0]["shape"] == onnx_in
    assert meta["outputs"][0]["name"] == out.name
    # and its configuration (Triton's extension) carries the same wire parameters
    served = httpclient.InferenceServerClient(server["http"].removeprefix("http://")) \
        .get_model_config("tail", headers=AUTH)
    text_format.Parse(text_format.MessageToString(json_format.ParseDict(
        served, model_config_pb2.ModelConfig())), model_config_pb2.ModelConfig())
    assert served["input"][0] == {"name": given.name, "data_type": "TYPE_INT8",
                                  "dims": list(given.dims)}
    assert {k: v["string_value"] for k, v in served["parameters"].items()} == \
        {k: v.string_value for k, v in config.parameters.items()}
    assert served["max_batch_size"] >= config.max_batch_size
    from tritonclient.utils import InferenceServerException

    client = httpclient.InferenceServerClient(server["http"].removeprefix("http://"))
    with pytest.raises(InferenceServerException, match="No model 'nope'"):
        client.get_model_config("nope", headers=AUTH)
    with pytest.raises(InferenceServerException, match="token"):
        client.get_model_config("tail")

    # KServe's own SDK model of the spec: a key it does not know is dropped on the way in,
    # so the round trip must give back the file's spec unchanged
    check = subprocess.run([sys.executable, "-c", """
import copy, json, sys, yaml
path = sys.argv.pop(1)
import kserve
import kubernetes.client
document = yaml.safe_load(open(path).read())

def prune(value):  # the SDK fills name: '' where the container spec has one
    if isinstance(value, dict):
        return {k: prune(v) for k, v in value.items() if v != ""}
    return value

def same(client, part, kind):
    class Body:
        data = json.dumps(part)
    model = client.deserialize(Body(), kind)
    return model, prune(client.sanitize_for_serialization(model)) == part

spec = copy.deepcopy(document["spec"])
resources = spec["predictor"]["model"].pop("resources")  # a Kubernetes type
k8s = kubernetes.client.ApiClient()
parsed, spec_same = same(kserve.ApiClient(), spec, "V1beta1InferenceServiceSpec")
_, meta_same = same(k8s, document["metadata"], "V1ObjectMeta")
_, resources_same = same(k8s, resources, "V1ResourceRequirements")
model = parsed.predictor.model
print(json.dumps({"same": [spec_same, meta_same, resources_same],
                  "head": [document["apiVersion"], document["kind"]],
                  "model": [model.model_format.name, model.protocol_version, model.runtime,
                            model.storage_uri]}))
""", str(repo / "inferenceservice.yaml")], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr[-2000:]
    found = json.loads(check.stdout.strip().splitlines()[-1])
    assert found == {"same": [True, True, True], "head": ["serving.kserve.io/v1beta1", "InferenceService"],
                     "model": ["onnx", "v2", "kserve-tritonserver", "s3://bucket/models"]}

    again = cli("export-triton", split_dir, "-o", repo)
    assert again.code == 1 and "output-exists" in again.stderr
    bad = cli("export-triton", split_dir, "-o", tmp_path / "other", "--model-name", "no spaces")
    assert bad.code == 1 and "bad-model-name" in bad.stderr and not (tmp_path / "other").exists()
