"""A corpus of hostile and careless input over every verb (issue 17's "done when"): every case
is a clean refusal (exit 1 or a usage error 2; the problem named with a reference and a hint),
never an internal error or a traceback, and nothing half-written is left in OUT.

The files are made here from real artifacts: zero-byte, truncated, renamed to another
format's suffix, random bytes, text, an IR without its weights.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

CNN = "builtin:digits-cnn"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, digits_artifacts):
    folder = tmp_path_factory.mktemp("corpus")
    onnx = (digits_artifacts / "digits-cnn.onnx").read_bytes()
    tflite = (digits_artifacts / "digits-cnn.tflite").read_bytes()
    xml = (digits_artifacts / "digits-cnn.xml").read_bytes()
    weights = (digits_artifacts / "digits-cnn.bin").read_bytes()
    rng = np.random.default_rng(0)
    files = {
        "zero.onnx": b"", "zero.tflite": b"", "zero.xml": b"", "zero.pt2": b"",
        "truncated.onnx": onnx[: len(onnx) // 3],
        "truncated.tflite": tflite[: len(tflite) // 3],
        "onnx-renamed.tflite": onnx, "tflite-renamed.onnx": tflite,
        "tflite-renamed.xml": tflite, "text.xml": b"hello, not an IR\n",
        "random.onnx": rng.bytes(4096), "random.tflite": rng.bytes(4096),
        "random.pt2": rng.bytes(4096),
        "noweights.xml": xml,  # no noweights.bin beside it
        "shortbin.xml": xml,
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    (folder / "shortbin.bin").write_bytes(weights[: len(weights) // 2])
    (folder / "bad-labels.npz").write_bytes(b"")
    np.savez(folder / "bad-labels.npz", x=rng.random((30, 3, 32, 32), dtype=np.float32),
             y=np.arange(30) % 13)
    (folder / "binary.yaml").write_bytes(onnx[:2000])
    return folder


BAD_MODELS = ["zero.onnx", "zero.tflite", "zero.xml", "zero.pt2", "truncated.onnx",
              "truncated.tflite", "onnx-renamed.tflite", "tflite-renamed.onnx",
              "tflite-renamed.xml", "text.xml", "random.onnx", "random.tflite", "random.pt2",
              "noweights.xml", "shortbin.xml"]


def _clean_refusal(result, out=None) -> None:
    assert result.code in (1, 2), result
    text = result.stderr
    assert "internal-error" not in text and "Traceback" not in text, result
    if result.code == 1:
        assert "error: " in text and "hint:" in text, result
    if out is not None and out.exists():
        leftovers = [p.name for p in out.iterdir()
                     if p.name.startswith(".staging") or p.name.endswith(".partial")]
        assert not leftovers, leftovers


@pytest.mark.parametrize("name", BAD_MODELS)
def test_eval_of_a_bad_artifact(cli, corpus, name):
    _clean_refusal(cli("eval", corpus / name, "--data", "builtin:digits"))


@pytest.mark.parametrize("name", BAD_MODELS)
def test_profile_of_a_bad_artifact(cli, corpus, name):
    _clean_refusal(cli("profile", corpus / name, "--runs", "1", "--duration", "0.01",
                       "--warmup", "0", "--no-energy"))


@pytest.mark.parametrize("name", [n for n in BAD_MODELS if n.endswith((".onnx", ".pt2"))])
@pytest.mark.parametrize("verb", ["inspect", "export", "compress"])
def test_model_verbs_on_a_bad_model(cli, corpus, tmp_path, name, verb):
    out = tmp_path / "out"
    args = {"inspect": [], "export": ["-o", out], "compress": ["--method", "fp16", "-o", out]}
    _clean_refusal(cli(verb, corpus / name, *args[verb]), out)


@pytest.mark.parametrize("name", ["zero.tflite", "truncated.tflite", "onnx-renamed.tflite",
                                  "random.tflite"])
def test_targets_check_of_a_bad_tflite(cli, corpus, name):
    _clean_refusal(cli("targets", "check", corpus / name, "stm32f746"))


@pytest.mark.parametrize("args", [
    ("serve", "PLACEHOLDER", "--port", "99999"),
    ("serve", "PLACEHOLDER", "--port", "-1"),
    ("serve", "PLACEHOLDER", "--grpc-port", "99999"),
    ("profile", CNN, "--cpus", "99"),
    ("profile", CNN, "--cpus", "banana"),
    ("profile", CNN, "--runs", "0"),
    ("profile", CNN, "--batch-size", "0"),
    ("split", "plan", CNN, "--device", "rpi5", "--bandwidth", "0Mbps"),
    ("split", "plan", CNN, "--device", "nowhere"),
    ("split", "plan", CNN, "--device", "rpi5", "--precision", "int3"),
    ("compress", CNN, "--method", "w99a8", "-o", "OUT"),
    ("compress", CNN, "--method", "int8", "--max-drop", "-3", "-o", "OUT"),
    ("compress", CNN, "--method", "int8", "--max-drop", "nan", "-o", "OUT"),
    ("export", CNN, "--input-shape", "1x3x0x32", "-o", "OUT"),
    ("export", CNN, "--input-shape", "1x3x99999x99999", "-o", "OUT"),
    ("inspect", CNN, "--data", "nowhere.npz"),
    ("inspect", "torchvision:not_a_net"),
    ("inspect", "os:system"),
    ("eval", "nowhere.onnx", "--data", "builtin:digits"),
], ids=lambda a: " ".join(str(x) for x in a) if isinstance(a, tuple) else str(a))
def test_bad_values(cli, tmp_path, args):
    out = tmp_path / "out"
    args = [out if a == "OUT" else a for a in args]
    if "PLACEHOLDER" in args:
        args = [tmp_path / "nosplit" if a == "PLACEHOLDER" else a for a in args]
    _clean_refusal(cli(*args), out)
    if out.exists():
        assert not [p for p in out.iterdir() if p.name != "manifest.json"
                    and not p.name.startswith(".manifest")], list(out.iterdir())


def test_split_with_labels_outside_the_classes(cli, corpus, tmp_path):
    out = tmp_path / "out"
    _clean_refusal(cli("split", CNN, "--at", "pool1", "--bottleneck", "2", "--data",
                       corpus / "bad-labels.npz", "-o", out, "--distill-epochs", "1",
                       "--finetune-epochs", "1"), out)


def test_run_of_a_binary_recipe(cli, corpus, tmp_path):
    _clean_refusal(cli("run", corpus / "binary.yaml", "-o", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_profile_save_into_a_missing_folder_keeps_the_profile(cli, tmp_path):
    """The destination is checked before measuring: nothing is measured and lost."""
    result = cli("profile", CNN, "--runs", "2", "--duration", "0.01", "--warmup", "0",
                 "--no-energy", "--save", tmp_path / "missing" / "p.json")
    assert "internal-error" not in result.stderr and "Traceback" not in result.stderr
    if result.code == 0:  # written after creating the folder, or printed: never lost
        assert (tmp_path / "missing" / "p.json").is_file() or result.stdout.strip()
    else:
        _clean_refusal(result)


def test_a_read_only_out_is_refused_before_work(cli, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        _clean_refusal(cli("export", CNN, "-o", out))
    finally:
        out.chmod(0o700)
        shutil.rmtree(out)
