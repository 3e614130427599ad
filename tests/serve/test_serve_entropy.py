"""`edgepipe serve` of an entropy-coded split: bitstreams (UINT8, to NAME-entropy) decoded
on the server give the local tail's predictions; truncated and corrupted ones get 400 with
the server alive after; `split run --entropy` sends them and counts their bytes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_serve import AUTH, TOKEN, _post, local_logits, some_codes, start_server, stop


@pytest.fixture(scope="module")
def entropy_server(entropy_split_dir):
    process, ready = start_server(entropy_split_dir, "--timeout", "5")
    yield ready
    err = stop(process)
    assert "Traceback" not in err, err[-3000:]


def _bitstreams(split_dir, codes: np.ndarray) -> list[bytes]:
    from edgepipe.split.entropy import CodeTables, EntropyCoder

    coder = EntropyCoder(CodeTables.load(split_dir / "entropy.npz"), codes.shape[1:])
    return [coder.encode((c.astype(np.int16) + 128).astype(np.uint8)) for c in codes]


def _infer(server, data: bytes) -> tuple[int, str]:
    body = json.dumps({"inputs": [{"name": "codes_entropy", "shape": [len(data)],
                                   "datatype": "UINT8", "data": list(data)}]}).encode()
    return _post(server, "/v2/models/tail-entropy/infer", body)


def test_bitstreams_served_and_bad_ones_refused(entropy_server, entropy_split_dir):
    import tritonclient.http as httpclient

    assert "tail-entropy" in entropy_server["models"]
    assert entropy_server["wire"]["entropy"]["tables"] == "entropy.npz"
    codes = some_codes(entropy_split_dir, 8)
    streams = _bitstreams(entropy_split_dir, codes)
    expected = local_logits(entropy_split_dir, codes)
    host = entropy_server["http"].removeprefix("http://")
    client = httpclient.InferenceServerClient(host)
    batch = np.frombuffer(b"".join(streams), dtype=np.uint8)
    tensor = httpclient.InferInput("codes_entropy", [batch.size], "UINT8")
    tensor.set_data_from_numpy(batch, binary_data=True)
    answer = client.infer("tail-entropy", [tensor], headers=AUTH).as_numpy("output")
    assert np.array_equal(answer.argmax(1), expected.argmax(1))
    np.testing.assert_allclose(answer, expected, atol=1e-5)

    good = streams[0]
    flipped = bytearray(good)
    flipped[-2] ^= 0x04
    for bad, words in ((good[:-3], "truncated"), (good[:4], "header"),
                       (bytes(flipped), "CRC32"), (good + good[:-1], "Bitstream 2"),
                       (b"", "no bitstream")):
        status, text = _infer(entropy_server, bad)
        assert status == 400, text
        assert words in text
        ok, _ = _infer(entropy_server, good)
        assert ok == 200  # alive, and still right


def test_split_run_sends_bitstreams(cli, entropy_server, entropy_split_dir, monkeypatch):
    monkeypatch.setenv("EDGEPIPE_SERVE_TOKEN", TOKEN)
    result = cli("split", "run", entropy_split_dir, "--server", entropy_server["http"], "--samples",
                 "30", "--entropy", "--json")
    assert result.code == 0, result
    r = result.json()["result"]
    assert r["encoding"] == "entropy" and r["model"] == "tail-entropy"
    assert r["against_local_tail"]["prediction_agreement"] == 1.0
    assert r["bytes"]["payload_mean"] < 256  # the bitstreams, below the 256 raw codes
    plain = cli("split", "run", entropy_split_dir, "--server", entropy_server["http"], "--samples",
                "30", "--json")
    assert r["bytes"]["request_mean"] < plain.json()["result"]["bytes"]["request_mean"]
    both = cli("split", "run", entropy_split_dir, "--server", entropy_server["http"], "--entropy",
               "--zlib")
    assert both.code != 0 and "conflicting-encodings" in both.stderr


def test_export_triton_carries_the_tables(cli, entropy_split_dir, tmp_path):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    repo = tmp_path / "repo"
    made = cli("export-triton", entropy_split_dir, "-o", repo, "--json")
    assert made.code == 0, made
    result = made.json()["result"]
    assert (repo / "models/tail/entropy.npz").read_bytes() == (
        entropy_split_dir / "entropy.npz").read_bytes()
    assert "models/tail/entropy.npz" in result["files"]
    assert result["entropy"]["bitstreams_served"] is False and "Python" in result["entropy"][
        "needs"]
    config = text_format.Parse((repo / "models/tail/config.pbtxt").read_text(),
                               model_config_pb2.ModelConfig())
    assert config.parameters["edgepipe_entropy_tables"].string_value == "entropy.npz"
