"""Input-codec baselines (split/codecs.py): the 8-bit image behind the model's input, coded
with PNG, JPEG and WebP, measured through the whole model; and their rows in `split plan`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgepipe.data import splits_for
from edgepipe.errors import InputError
from edgepipe.model import classifier_classes, load_model
from edgepipe.split.codecs import (
    Setting,
    check_quality,
    decode,
    measure_codecs,
    pixels_for,
    settings_for,
)
from edgepipe.split.plan import verdict

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "schemas"


@pytest.fixture(scope="module")
def digits():
    loaded = load_model("builtin:digits-cnn")
    part = splits_for("builtin:digits", loaded.inputs,
                      num_classes=classifier_classes(loaded)).eval
    return loaded, part.inputs[loaded.inputs[0].name], part.labels, part.preprocessing


def test_the_pixels_round_trip_and_png_is_exact(digits):
    _, x, _, preprocessing = digits
    mapping = pixels_for(x, preprocessing)
    pixels = mapping.to_pixels(x)
    assert pixels.dtype == np.uint8 and pixels.shape == (len(x), 32, 32)
    assert mapping.mode == "L"  # three equal channels go as one gray channel
    # the digits hold 0..16, scaled by 1/16: back to the model's values within half a level
    assert np.abs(mapping.from_pixels(pixels) - x).max() <= 16 / 255 / 16 / 2 + 1e-6
    for image in pixels[:20]:
        assert np.array_equal(decode(Setting("png").encode(image, "L"), "L"), image)
        assert np.array_equal(decode(Setting("webp").encode(image, "L"), "L"), image)
    sizes = {q: np.mean([len(Setting(codec, q).encode(i, "L")) for i in pixels[:40]])
             for codec in ("jpeg", "webp") for q in (5, 50, 95)}
    assert sizes[5] < sizes[50] < sizes[95]


def test_bytes_and_accuracy_are_measured_on_the_decoded_inputs(digits):
    loaded, x, labels, preprocessing = digits
    settings = [Setting("png"), Setting("jpeg", 5), Setting("webp", 50)]
    result = measure_codecs(loaded.module.eval(), x, labels, preprocessing, settings)
    png, jpeg5, webp = result.points
    assert png.accuracy == result.uint8_accuracy and png.agreement is not None
    assert jpeg5.accuracy != png.accuracy  # measured, not assumed: q=5 loses samples
    assert result.float_accuracy > 0.9 and result.samples == len(x) == png.samples
    # the bytes are those of the encoded files, per sample
    pixels = pixels_for(x, preprocessing).to_pixels(x)
    sizes = [len(Setting("jpeg", 5).encode(p, "L")) for p in pixels]
    assert jpeg5.bytes_mean == pytest.approx(np.mean(sizes))
    assert jpeg5.bytes_p95 == pytest.approx(np.percentile(sizes, 95))
    assert jpeg5.bytes_max == max(sizes)
    # Pillow's own files: a JPEG reads back as one
    with Image.open(io.BytesIO(Setting("jpeg", 5).encode(pixels[0], "L"))) as image:
        assert image.format == "JPEG"
    assert webp.bytes_mean < png.bytes_mean and webp.encode_s > 0 and webp.decode_s > 0


def test_quality_out_of_range_and_unknown_codecs_are_refused():
    with pytest.raises(InputError) as raised:
        check_quality("jpeg", 100)
    assert raised.value.reference == "bad-codec-quality" and "5 to 95" in str(raised.value)
    with pytest.raises(InputError):
        settings_for(["webp"], [0])
    with pytest.raises(InputError) as raised:
        settings_for(["gif"])
    assert raised.value.reference == "unknown-codec"
    names = [s.name for s in settings_for(["png", "jpeg", "webp"], [20])]
    assert names == ["PNG", "JPEG q=20", "WebP q=20", "WebP lossless"]


def test_a_feature_vector_input_is_refused():
    x = np.zeros((4, 64), dtype=np.float32)
    with pytest.raises(InputError) as raised:
        pixels_for(x, None)
    assert raised.value.reference == "codec-needs-image"
    with pytest.raises(InputError) as raised:
        pixels_for(np.zeros((4, 5, 8, 8), dtype=np.float32), None)
    assert "1 (gray) or 3 (RGB)" in str(raised.value)


def test_the_verdict_says_plainly_whether_a_codec_beats_every_cut():
    coded = "all on server (WebP q=50 input)"

    def row(option, seconds, nbytes, within=True):
        extra = {"codec": {"codec": "webp", "quality": 50, "within_slack": within},
                 "accuracy": 0.975} if "WebP" in option else {}
        return {"option": option, "end_to_end_s": seconds, "bytes": nbytes,
                "device_energy_j": None, **extra}

    cut = row("cut pool2 (raw 8-bit)", 0.03, 2048)
    wins = verdict([row(coded, 0.01, 412), cut])
    assert wins.startswith("sending the input as WebP q=50 (412 B, 97.50%) beats every cut")
    assert verdict([row(coded, 0.05, 412), cut]).startswith("no input codec beats every cut")
    # a codec over the accuracy slack is no option
    over = verdict([row(coded, 0.01, 412, within=False), cut])
    assert over.startswith("no input codec stays within")
    assert verdict([row(coded, 0.01, 412)]) is None  # no cut to beat


def test_split_plan_lists_codec_rows_and_says_when_one_wins(cli):
    import jsonschema

    # a slow link and a cut that sends 2 KiB: the coded input wins
    planned = cli("split", "plan", "builtin:digits-cnn", "--device", "rpi5", "--bandwidth",
                  "100kbps", "--cut", "pool2", "--data", "builtin:digits", "--codec", "webp",
                  "--codec", "png", "--quality", "50", "--json")
    assert planned.code == 0, planned
    document = planned.json()
    jsonschema.Draft202012Validator(json.loads(
        (SCHEMA / "command-split-plan.v1.schema.json").read_text())).validate(document)
    plan = document["result"]
    options = {o["option"]: o for o in plan["options"]}
    webp = options["all on server (WebP q=50 input)"]
    assert {"all on server (PNG input)", "all on server (WebP lossless input)"} <= set(options)
    assert webp["sources"]["head"] == "estimated" and webp["head_s"] > 0
    assert 0.5 < webp["accuracy"] <= 1 and webp["bytes_p95"] >= webp["bytes"] > 0
    assert webp["transfer_s"] == pytest.approx(webp["bytes"] * 8 / 1e5)
    assert plan["codecs"]["samples"] == 359 and len(plan["codecs"]["points"]) == 3
    assert plan["verdict"].startswith("sending the input as WebP q=50")
    assert "rows losing more than 1 top-1 point" in plan["models"]["codecs"]
    human = cli("split", "plan", "builtin:digits-cnn", "--device", "rpi5", "--bandwidth",
                "100kbps", "--cut", "pool2", "--data", "builtin:digits", "--codec", "webp",
                "--quality", "50")
    assert human.code == 0, human
    assert "WebP q=50" in human.stdout and "beats every cut" in human.stdout


def test_split_plan_refuses_bad_codec_requests(cli):
    mlp = cli("split", "plan", "builtin:digits-mlp", "--device", "rpi5", "--data",
              "builtin:digits", "--codec", "jpeg")
    assert mlp.code == 1 and "codec-needs-image" in mlp.stderr
    quality = cli("split", "plan", "builtin:digits-cnn", "--device", "rpi5", "--data",
                  "builtin:digits", "--codec", "jpeg", "--quality", "99")
    assert quality.code == 1 and "bad-codec-quality" in quality.stderr
    no_data = cli("split", "plan", "builtin:digits-cnn", "--device", "rpi5", "--codec", "png")
    assert no_data.code == 1 and "codec-needs-data" in no_data.stderr


def test_rgb_images_under_imagenet_normalization_come_back_exactly():
    from edgepipe.data.preprocessing import Preprocessing

    prepared = Preprocessing.of_images("photos", "imagenet", maximum=255, layout="NHWC",
                                       resize=None, channel_order="RGB", labels=None)
    pixels = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    x = ((pixels / 255.0 - np.array(prepared.mean)) / np.array(prepared.std)).astype(
        np.float32)
    mapping = pixels_for(x, prepared)
    assert mapping.mode == "RGB" and mapping.layout == "NHWC"
    assert np.array_equal(mapping.to_pixels(x), pixels)
    assert np.abs(mapping.from_pixels(pixels) - x).max() < 1e-5
    assert np.array_equal(decode(Setting("png").encode(pixels[0], "RGB"), "RGB"), pixels[0])


def test_codec_none_leaves_them_out(cli):
    plain = cli("split", "plan", "builtin:digits-cnn", "--device", "rpi5", "--data",
                "builtin:digits", "--cut", "pool2", "--codec", "none", "--json")
    assert plain.code == 0, plain
    plan = plain.json()["result"]
    assert plan["codecs"] is None and plan["verdict"] is None
    assert not any("codec" in o for o in plan["options"])
    mixed = cli("split", "plan", "builtin:digits-cnn", "--device", "rpi5", "--data",
                "builtin:digits", "--codec", "none", "--codec", "png")
    assert mixed.code == 1 and "unknown-codec" in mixed.stderr
