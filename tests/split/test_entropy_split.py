"""The entropy-coded bottleneck (`edgepipe split --entropy`): a learned density, integer
tables, range-coded bitstreams decoded bit-exactly, the rate falling as its weight grows,
and bad settings and bad bitstreams refused."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from edgepipe.errors import InputError
from edgepipe.split.api import SplitConfig, SplitResult, split_model
from edgepipe.split.entropy import (
    HEADER_BYTES,
    TABLES_FILE,
    BitstreamError,
    CodeTables,
    EntropyCoder,
    entropy_stats,
)
from edgepipe.split.train import SplitTraining

QUICK = SplitTraining(distill_epochs=2, finetune_epochs=0, patience=2)


@pytest.fixture(scope="module")
def entropy_split(entropy_split_dir):
    manifest = json.loads((entropy_split_dir / "manifest.json").read_text())
    return entropy_split_dir, SplitResult.from_dict(manifest["steps"][-1]["result"])


def _all_codes(out) -> np.ndarray:
    """The exported head's codes for every digits sample, as the coder takes them (uint8)."""
    from edgepipe.data import load_data_for_model
    from edgepipe.runtime import open_artifact

    head = open_artifact(out / "head.onnx")
    x = load_data_for_model("builtin:digits", head.inputs).inputs[head.inputs[0].name]
    codes = np.concatenate([head.run([x[i:i + 1]])[0] for i in range(len(x))])
    return (codes.astype(np.int16) + 128).astype(np.uint8)


def test_every_sample_round_trips_bit_exactly(entropy_split):
    from edgepipe.runtime import open_artifact

    out, result = entropy_split
    e = result.entropy
    assert e["decoded_exactly"] and e["samples"] == result.accuracy["samples"]
    # in torch: the tail on the decoded codes predicts exactly what the split model does
    assert e["tail_from_bitstreams"]["prediction_agreement_with_torch"] == 1.0
    assert e["tail_from_bitstreams"]["max_abs_logit_diff"] == 0.0
    manifest = json.loads((out / "manifest.json").read_text())
    recorded = manifest["steps"][-1]["result"]["wire"]["entropy"]
    assert recorded["tables"] == TABLES_FILE and (out / TABLES_FILE).is_file()
    # again here, from the artifacts alone, on every digit: head.onnx -> bitstream -> tail
    codes = _all_codes(out)
    coder = EntropyCoder(CodeTables.load(out / TABLES_FILE), codes.shape[1:])
    streams = [coder.encode(c) for c in codes]
    decoded = np.stack([coder.decode(s) for s in streams])
    assert np.array_equal(decoded, codes)
    tail = open_artifact(out / "tail.onnx")
    signed = (decoded.astype(np.int16) - 128).astype(np.int8)
    sent = (codes.astype(np.int16) - 128).astype(np.int8)
    assert np.array_equal(signed, sent)  # so the tail's input, and prediction, are the same
    for i in range(0, len(codes), 300):
        assert np.array_equal(tail.run([signed[i:i + 1]])[0], tail.run([sent[i:i + 1]])[0])
    # a batch is the bitstreams one after the other
    assert np.array_equal(coder.decode_many(b"".join(streams[:5])), codes[:5])
    # the bytes reported are the bitstreams' lengths (header included)
    stats = entropy_stats(coder, codes[:50])
    assert stats["bitstream_bytes_mean"] == np.mean([len(s) for s in streams[:50]])
    assert stats["bitstream_bytes_max"] == max(len(s) for s in streams[:50])
    assert abs(e["bitstream_bytes_mean"] - np.mean([len(s) for s in streams])) < 4
    assert result.bytes_per_sample["bitstream_bytes_mean"] == e["bitstream_bytes_mean"]
    assert e["encode_s_per_sample"] > 0 and e["decode_s_per_sample"] > 0
    assert all(len(s) > HEADER_BYTES for s in streams)
    assert result.accuracy["split_torch"] > 0.85


def test_tables_give_every_code_a_chance():
    probabilities = np.zeros((2, 256))
    probabilities[:, 0] = 1.0  # a density that put everything on code 0
    tables = CodeTables.from_probabilities(probabilities)
    assert (tables.frequencies >= 1).all() and (tables.frequencies.sum(1) == 1 << 16).all()
    coder = EntropyCoder(tables, (2, 3, 3))
    codes = np.full((2, 3, 3), 255, dtype=np.uint8)  # the least likely codes still code
    assert np.array_equal(coder.decode(coder.encode(codes)), codes)


def test_truncated_corrupted_and_foreign_bitstreams_are_refused():
    rng = np.random.default_rng(0)
    tables = CodeTables.from_probabilities(rng.random((4, 256)))
    coder = EntropyCoder(tables, (4, 8, 8))
    stream = coder.encode(rng.integers(0, 256, (4, 8, 8)).astype(np.uint8))
    flipped = bytearray(stream)
    flipped[HEADER_BYTES + 3] ^= 0x10
    other = EntropyCoder(CodeTables.from_probabilities(rng.random((4, 256))), (4, 8, 8))
    for bad, words in ((stream[:-1], "truncated"), (stream[:4], "header"),
                       (bytes(flipped), "CRC32"), (b"XXXX" + stream[4:], "not an entropy"),
                       (bytes([0xE1]) + stream[1:], "version 1"),
                       (stream + b"\0", "follow")):
        with pytest.raises(BitstreamError, match=words):
            coder.decode(bad)
    with pytest.raises(BitstreamError, match="another split's tables"):
        other.decode(stream)
    with pytest.raises(BitstreamError, match="code shape"):  # the shape seeds the CRC32
        EntropyCoder(CodeTables.from_probabilities(rng.random((4, 256))), (4, 4, 4)).decode(
            stream)
    assert zlib.crc32(stream[HEADER_BYTES:]) != 0  # the payload is really checked


def _split(digits_cnn, out, weight: float):
    loaded, splits = digits_cnn
    return split_model(loaded, SplitConfig(at="pool2", bottleneck=4, entropy=True,
                                           rate_weight=weight, training=QUICK), splits, out)


def test_a_larger_rate_weight_sends_fewer_bytes(digits_cnn, tmp_path):
    lighter = _split(digits_cnn, tmp_path / "light", 1e-4)
    heavier = _split(digits_cnn, tmp_path / "heavy", 1e-2)
    assert (heavier.entropy["bitstream_bytes_mean"]
            < 0.8 * lighter.entropy["bitstream_bytes_mean"])
    assert heavier.entropy["rate"]["rate_weight"] == 1e-2
    # the density's estimate, on the validation slice, is close to the real bitstreams
    for result in (lighter, heavier):
        estimate = result.entropy["rate"]["estimated_bytes_validation"]
        assert abs(estimate - result.entropy["bitstream_bytes_mean"]) < 0.2 * estimate


@pytest.mark.parametrize(("options", "reference"), [
    ({"rate_weight": 0.0}, "bad-rate-weight"),
    ({"rate_weight": -1.0}, "bad-rate-weight"),
    ({"rate_weight": float("nan")}, "bad-rate-weight"),
    ({"target_bytes": 0.1}, "bad-target-bytes"),
    ({"target_bytes": 6.0}, "bad-target-bytes"),
    ({"rate_weight": 1e-3, "target_bytes": 64.0}, "rate-options-conflict"),
    ({"rate_weight": 1e-3, "entropy": False}, "rate-without-entropy"),
])
def test_bad_rate_settings_are_refused(options, reference):
    with pytest.raises(InputError) as caught:
        SplitConfig(at="pool2", bottleneck=4, **{"entropy": True, **options})
    assert caught.value.reference == reference and caught.value.hint


def test_cli_refuses_a_bad_rate_weight(cli, tmp_path):
    result = cli("split", "builtin:digits-cnn", "--at", "pool2", "--bottleneck", "4",
                 "--data", "builtin:digits", "-o", tmp_path / "o", "--entropy",
                 "--rate-weight", "-1")
    assert result.code != 0 and "bad-rate-weight" in result.stderr
    result = cli("split", "builtin:digits-cnn", "--at", "pool2", "--bottleneck", "4",
                 "--data", "builtin:digits", "-o", tmp_path / "o", "--target-bytes", "64")
    assert result.code != 0 and "rate-without-entropy" in result.stderr


def test_config_round_trips_with_entropy():
    config = SplitConfig(at="pool2", bottleneck=4, entropy=True, target_bytes=64.0)
    assert SplitConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_a_target_steers_the_rate_weight():
    from edgepipe.split.train import _Rate

    rate = _Rate(None, target_bytes=50.0)
    first = rate.weight
    assert rate.score(0.1, bits=8 * 200.0) < -1  # before training, far over the target
    rate.steer(bits=8 * 200.0)  # a batch over the target: the weight rises (5% at most)
    assert rate.weight == pytest.approx(1.05 * first)
    for _ in range(20):
        rate.steer(bits=8 * 10.0)  # under it: the weight falls
    assert rate.weight < first
    assert rate.score(0.2, bits=8 * 10.0) == -0.2  # meeting the target: the score is -MSE
    record = rate.record(best_epoch=1)
    assert record["rate_weight"] == rate.weight and record["target_bytes"] == 50.0
    assert record["estimated_bytes_validation"] == 10.0 + HEADER_BYTES
