"""hf:FOLDER models (edgepipe.model.hf) and text data (edgepipe.data.text), on tiny
random-weight transformers models and a WordPiece tokenizer built here (nothing is
downloaded)."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

WORDS = ["the", "a", "cat", "dog", "sat", "on", "mat", "is", "good", "bad", "very", "movie", "was"]
PARITY_FLOOR = 1e-4  # max|diff| of a float export against the torch model


def _tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                             cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def _bert(folder: Path, *, tokenizer: bool = True) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=1000, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=64, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(folder)
    if tokenizer:
        _tokenizer().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A BERT classifier with its tokenizer, the same without one, a tiny ViT, and texts."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    root = tmp_path_factory.mktemp("hf")
    bert = _bert(root / "bert")
    bare = _bert(root / "bert-no-tokenizer", tokenizer=False)
    torch.manual_seed(0)
    vit = root / "vit"
    ViTForImageClassification(ViTConfig(
        image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, num_labels=3)).save_pretrained(vit)
    lines = [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(3 + i % 9))
             for i in range(30)]
    texts = root / "texts.txt"
    texts.write_text("\n".join(lines[:12]) + "\n\n" + "\n".join(lines[12:]) + "\n",
                     encoding="utf-8")
    labelled = root / "texts.tsv"
    labelled.write_text("".join(f"{i % 2}\t{line}\n" for i, line in enumerate(lines)),
                        encoding="utf-8")
    long = root / "long.txt"
    long.write_text("\n".join(["cat " * 100, "dog sat", "the " * 70, "good movie"]) + "\n",
                    encoding="utf-8")
    return {"bert": bert, "bare": bare, "vit": vit, "texts": texts, "tsv": labelled,
            "long": long, "root": root}


def _words(text: str) -> str:
    """``text`` with its whitespace runs as single spaces (log lines wrap on a terminal)."""
    return " ".join(text.split())


def _result(output: str) -> dict:
    return json.loads(output)["result"]


def test_bert_exports_to_every_format_within_the_parity_floor(cli, folders, tmp_path):
    out = tmp_path / "out"
    formats = ["onnx", "openvino", "tflite"]
    if importlib.util.find_spec("executorch") is not None:
        formats.append("executorch")
    result = cli("export", f"hf:{folders['bert']}", *[a for f in formats for a in ("-f", f)],
                 "-o", out, "--json")
    assert result.code == 0, result.stderr
    artifacts = _result(result.stdout)["artifacts"]
    assert sorted(a["format"] for a in artifacts) == sorted(formats)
    for artifact in artifacts:
        # the sequence axis stays dynamic (up to max_position_embeddings) where the format
        # can; LiteRT fixes it at the nominal 64. Each dynamic one is checked at 32 as well.
        lengths = [s["shape"][1] for s in artifact["inputs"]]
        assert [s["shape"][0] for s in artifact["inputs"]] == [1, 1, 1]
        if artifact["format"] == "tflite":
            assert lengths == [64] * 3 and "dynamic_axes" not in artifact["parity"]
        else:
            assert all(isinstance(n, str) for n in lengths), artifact["inputs"]
            assert artifact["parity"]["dynamic_axes"] == [{"name": "sequence",
                                                           "sizes": [64, 32]}]
            assert "output at sequence 32" in [o["name"] for o in artifact["parity"]["outputs"]]
        # LiteRT names them args_0.. and takes int32; ExecuTorch's program names none
        if artifact["format"] not in ("tflite", "executorch"):
            assert [(s["name"], s["dtype"]) for s in artifact["inputs"]] == [
                ("input_ids", "int64"), ("attention_mask", "int64"),
                ("token_type_ids", "int64")]
        assert artifact["parity"]["passed"], artifact["name"]
        for output in artifact["parity"]["outputs"]:
            assert output["max_abs_diff"] < PARITY_FLOOR, (artifact["name"], output)
        assert artifact["source"]["options"]["architecture"] == "BertForSequenceClassification"
    _runs_at_other_lengths(folders["bert"], out, artifacts)
    # text data for the formats that rename the inputs (LiteRT's int32 args_N, ExecuTorch's
    # unnamed ones): tokenized under the source's names, matched by position, cast
    for artifact in [a for a in artifacts if a["format"] in ("tflite", "executorch")]:
        result = cli("eval", out / artifact["path"], "--data", folders["texts"], "--reference",
                     f"hf:{folders['bert']}", "--subset", "all", "--json")
        assert result.code == 0, result.stderr
        document = _result(result.stdout)
        assert document["metric"] == "sqnr_db" and document["value"] > 80, document
        assert document["data"]["samples"] == 30
    if "executorch" in formats:  # part XNNPACK, part portable kernels: ETDump times both
        (pte,) = [a for a in artifacts if a["format"] == "executorch"]
        result = cli("profile", out / pte["path"], "--target", "host", "--runs", 5,
                     "--duration", 0, "--json")
        assert result.code == 0, result.stderr
        layers = _result(result.stdout)["layers"]
        assert "ETDump" in layers["source"], layers
        kinds = {row["exec_type"] for row in layers["rows"]}
        assert kinds == {"XNNPACK", "portable kernel"}, kinds
        assert len({row["calls"] for row in layers["rows"]}) == 1  # every op, every run
        assert all(row["median_us"] >= 0 for row in layers["rows"])
        assert abs(sum(row["share"] for row in layers["rows"]) - 1) < 1e-6


def _runs_at_other_lengths(folder: Path, out: Path, artifacts: list[dict]) -> None:
    """The dynamic artifacts match the torch model at lengths parity did not check (1, 5
    and the position table's 64), in their own runtimes."""
    import numpy as np
    import torch
    from transformers import BertForSequenceClassification

    from edgepipe.runtime import open_artifact

    model = BertForSequenceClassification.from_pretrained(folder).eval()
    rng = np.random.default_rng(0)
    for length in (1, 5, 64):
        ids = rng.integers(0, 1000, (1, length))
        arrays = [ids, np.ones_like(ids), np.zeros_like(ids)]
        with torch.inference_mode():
            expected = model(*[torch.from_numpy(a) for a in arrays]).logits.numpy()
        for artifact in [a for a in artifacts if a["format"] != "tflite"]:
            session = open_artifact(out / artifact["path"])
            (got,) = session.run(arrays)
            assert np.abs(got - expected).max() < PARITY_FLOOR, (artifact["name"], length)


def test_a_failed_pte_names_the_layer_whose_weights_changed(folders, tmp_path, monkeypatch):
    """One row of layer 1's feed-forward output weights is changed inside the .pte (XNNPACK
    keeps them as float32 [out, in]); ExecuTorch's numeric debugger, through edgepipe, must
    point at that layer and pass the ones before it."""
    pytest.importorskip("executorch")
    import numpy as np

    from edgepipe.errors import ToleranceError
    from edgepipe.export import executorch as executorch_export
    from edgepipe.export import export_model
    from edgepipe.model import load_model

    real_export = executorch_export.export
    name = "model.bert.encoder.layer.1.output.dense.weight"

    def corrupt(job):
        exported = real_export(job)
        weight = dict(job.source.module.named_parameters())[name].detach().numpy()
        stored = np.ascontiguousarray(weight).tobytes()
        data = exported.path.read_bytes()
        assert data.count(stored) == 1  # found once: this weight and nothing else changes
        changed = weight.copy()
        changed[0] += np.float32(50)  # one output feature: LayerNorm would undo a shift of all
        exported.path.write_bytes(data.replace(stored, changed.tobytes()))
        return exported

    monkeypatch.setattr(executorch_export, "export", corrupt)
    with pytest.raises(ToleranceError) as info:
        export_model(load_model(f"hf:{folders['bert']}"), tmp_path, formats=("executorch",))
    layers = info.value.details["failed"][0]["layers"]
    assert layers["available"] and layers["reproduced"] is False  # the file was changed
    assert layers["first_divergent"] == "model.bert.encoder.layer.1.output"
    rows = layers["layers"]
    first = next(i for i, row in enumerate(rows) if not row["passed"])
    assert first >= 4 and all(row["max_abs_diff"] < 1e-5 for row in rows[:first])
    assert {"XNNPACK delegate", "portable kernel"} <= {row["runs_on"] for row in rows}
    assert "first layer over the tolerance: model.bert.encoder.layer.1.output" in \
        info.value.message
    assert (tmp_path / "bert.pte.failed").is_file()


def test_vit_exports_to_onnx_with_pixel_values_from_the_config(cli, folders, tmp_path):
    result = cli("export", f"hf:{folders['vit']}", "-f", "onnx", "-o", tmp_path / "out",
                 "--json")
    assert result.code == 0, result.stderr
    (artifact,) = _result(result.stdout)["artifacts"]
    assert artifact["inputs"] == [{"name": "pixel_values", "shape": [1, 3, 32, 32],
                                   "dtype": "float32"}]
    assert artifact["outputs"][0]["shape"] == [1, 3]
    assert artifact["parity"]["outputs"][0]["max_abs_diff"] < PARITY_FLOOR


def test_a_sharded_bert_model_exports_its_last_hidden_state(cli, folders, tmp_path):
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    folder = tmp_path / "sharded"
    BertModel(BertConfig(vocab_size=1000, hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=64,
                         max_position_embeddings=64)).save_pretrained(folder,
                                                                      max_shard_size="50KB")
    assert (folder / "model.safetensors.index.json").is_file()
    result = cli("export", f"hf:{folder}", "-f", "onnx", "-o", tmp_path / "out", "--json")
    assert result.code == 0, result.stderr
    (artifact,) = _result(result.stdout)["artifacts"]
    assert artifact["outputs"][0]["shape"] == [1, "sequence", 32]  # the sequence is dynamic
    assert artifact["parity"]["outputs"][0]["max_abs_diff"] < PARITY_FLOOR
    assert "token_type_ids [0, 2)" in artifact["parity"]["inputs"]["distribution"]


def test_whisper_exports_its_encoder_on_input_features(cli, tmp_path):
    import torch
    from transformers import WhisperConfig, WhisperForAudioClassification, WhisperModel

    from edgepipe.model import load_model, run_torch

    config = WhisperConfig(d_model=32, encoder_layers=1, decoder_layers=1,
                           encoder_attention_heads=2, decoder_attention_heads=2,
                           encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80,
                           vocab_size=100, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                           decoder_start_token_id=1, num_labels=3)
    torch.manual_seed(0)
    WhisperForAudioClassification(config).save_pretrained(tmp_path / "classifier")
    WhisperModel(config).save_pretrained(tmp_path / "model")
    result = cli("export", f"hf:{tmp_path / 'classifier'}", "-f", "onnx", "-o",
                 tmp_path / "out", "--json")
    assert result.code == 0, result.stderr
    (artifact,) = _result(result.stdout)["artifacts"]
    assert artifact["inputs"] == [{"name": "input_features", "shape": [1, 80, 3000],
                                   "dtype": "float32"}]
    assert artifact["outputs"][0]["shape"] == [1, 3]
    assert artifact["parity"]["outputs"][0]["max_abs_diff"] < PARITY_FLOOR

    encoder = load_model(f"hf:{tmp_path / 'model'}")  # WhisperModel: its encoder only
    assert [s.shape for s in encoder.inputs] == [(1, 80, 3000)]
    (hidden,) = run_torch(encoder.module, encoder.sample_inputs(1))
    assert hidden.shape == (1, 1500, 32)

    # a smaller encoder takes twice its max_source_positions in frames (it refuses others)
    config.max_source_positions, config.num_mel_bins = 50, 16
    WhisperModel(config).save_pretrained(tmp_path / "short")
    short = load_model(f"hf:{tmp_path / 'short'}")
    assert [s.shape for s in short.inputs] == [(1, 16, 100)]
    (hidden,) = run_torch(short.module, short.sample_inputs(1))
    assert hidden.shape == (1, 50, 32)


def test_trusted_pickled_weights_load_as_the_safetensors_do(folders, tmp_path):
    import shutil

    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification

    from edgepipe.model import load_model, run_torch

    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(folders["bert"] / "config.json", folder / "config.json")
    state = AutoModelForSequenceClassification.from_pretrained(folders["bert"]).state_dict()
    torch.save(state, folder / "pytorch_model.bin")
    trusted = load_model(f"hf:{folder}", trust_pickle=True)
    reference = load_model(f"hf:{folders['bert']}")
    arrays = reference.sample_inputs(2, seed=3)
    assert trusted.options["trust_pickle"] is True
    np.testing.assert_array_equal(run_torch(trusted.module, arrays)[0],
                                  run_torch(reference.module, arrays)[0])


def test_compress_and_eval_on_text_data(cli, folders, tmp_path):
    out = tmp_path / "out"
    result = cli("compress", f"hf:{folders['bert']}", "--method", "int8-dynamic", "-f", "onnx",
                 "--data", folders["tsv"], "-o", out, "--json")
    assert result.code == 0, result.stderr
    document = _result(result.stdout)
    (artifact,) = document["artifacts"]
    metrics = artifact["metrics"]
    assert metrics["metric"] == "top1" and metrics["data"]["labelled"]
    assert metrics["samples"] == metrics["data"]["split"]["eval_count"] > 0
    # int8 weights on a random tiny BERT: outputs stay close to the float model's
    (check,) = metrics["eval"]["outputs"]
    assert check["sqnr_db"] > 25 and check["top1_agreement"] >= 0.85
    assert artifact["preprocessing"]["tokenizer"] == str(folders["bert"].resolve())
    assert artifact["preprocessing"]["sequence_length"] == 64

    # eval takes the tokenizer from the artifact's manifest; unlabelled text: SQNR
    result = cli("eval", out / "bert.onnx", "--data", folders["texts"], "--reference",
                 f"hf:{folders['bert']}", "--subset", "all", "--json")
    assert result.code == 0, result.stderr
    document = _result(result.stdout)
    assert document["metric"] == "sqnr_db" and document["value"] > 80
    assert document["data"]["samples"] == 30  # the empty line is skipped
    assert "skipped 1 empty line" in _words(result.stderr)

    result = cli("eval", out / "bert.int8-dynamic.onnx", "--data", folders["tsv"], "--json")
    assert result.code == 0, result.stderr
    document = _result(result.stdout)
    assert document["metric"] == "top1" and 0.0 <= document["value"] <= 1.0
    assert document["data"]["preprocessing_from"] == "manifest.json"


def test_onnx_int8_preprocesses_the_dynamic_sequence_and_leaves_the_cwd_alone(
        cli, folders, tmp_path, monkeypatch):
    # ORT's symbolic shape inference stopped at the dynamic sequence (skipping
    # quant_pre_process) and wrote sym_shape_infer_temp.onnx into the working directory
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "out"
    result = cli("compress", f"hf:{folders['bert']}", "--method", "int8", "-f", "onnx",
                 "--data", folders["tsv"], "-o", out, "--json")
    assert result.code == 0, result.stderr
    (artifact,) = _result(result.stdout)["artifacts"]
    assert artifact["tool"]["pre_process"] == "quant_pre_process"
    assert [s["shape"] for s in artifact["inputs"]] == [[1, "sequence"]] * 3
    (check,) = artifact["metrics"]["eval"]["outputs"]
    assert check["sqnr_db"] > 20, check
    assert list(cwd.iterdir()) == []


def test_executorch_int8_quantizes_a_text_encoder(cli, folders, tmp_path):
    pytest.importorskip("executorch")
    # ExecuTorch's XNNPACK quantizer made the position indices float (IndexError) before
    # edgepipe kept integer scalar arithmetic out of its scalar-to-tensor pass
    out = tmp_path / "out"
    result = cli("compress", f"hf:{folders['bert']}", "--method", "int8", "-f", "executorch",
                 "--data", folders["tsv"], "-o", out, "--json")
    assert result.code == 0, result.stderr
    (artifact,) = _result(result.stdout)["artifacts"]
    (check,) = artifact["metrics"]["eval"]["outputs"]
    assert check["sqnr_db"] > 20 and check["top1_agreement"] >= 0.8, check


def test_profile_feeds_random_tokens_in_range_or_the_tokenized_text(cli, folders, tmp_path):
    out = tmp_path / "out"
    assert cli("export", f"hf:{folders['bert']}", "-f", "onnx", "-o", out).code == 0
    # random token types up to 100 would overrun BERT's 2-row token type table in ORT
    result = cli("profile", out / "bert.onnx", "--target", "host", "--runs", "3", "--json")
    assert result.code == 0, result.stderr
    inputs = _result(result.stdout)["inputs"]
    assert inputs["kind"] == "random" and "token_type_ids in [0, 2)" in inputs["description"]
    # the file's sequence axis is dynamic; the manifest's nominal length fills it
    assert inputs["shapes"] == [[1, 64]] * 3
    result = cli("profile", out / "bert.onnx", "--target", "host", "--runs", "3", "--data",
                 folders["texts"], "--json")
    assert result.code == 0, result.stderr
    inputs = _result(result.stdout)["inputs"]
    assert inputs["kind"] == "data" and "texts.txt" in inputs["description"]

    # another length of the dynamic sequence, measured; refused outside 1..64
    result = cli("profile", out / "bert.onnx", "--target", "host", "--runs", "3",
                 "--sequence-length", "16", "--json")
    assert result.code == 0, result.stderr
    assert _result(result.stdout)["inputs"]["shapes"] == [[1, 16]] * 3
    result = cli("profile", out / "bert.onnx", "--target", "host", "--sequence-length", "65")
    assert result.code == 1 and "bad-sequence-length" in result.stderr
    assert "1 to 64 tokens" in _words(result.stderr)

    # a hand-edited manifest's limits that are not whole numbers above 0 are ignored
    manifest = out / "manifest.json"
    document = json.loads(manifest.read_text())
    document["artifacts"][0]["source"]["options"]["value_limits"] = {
        "input_ids": "abc", "attention_mask": 0, "token_type_ids": 2}
    manifest.write_text(json.dumps(document))
    result = cli("profile", out / "bert.onnx", "--target", "host", "--runs", "3", "--json")
    assert result.code == 0, result.stderr
    described = _result(result.stdout)["inputs"]["description"]
    assert "token_type_ids in [0, 2)" in described and "input_ids in" not in described


def test_a_fixed_sequence_is_not_profiled_at_another_length(cli, folders, tmp_path):
    out = tmp_path / "out"
    assert cli("export", f"hf:{folders['bert']}", "-f", "tflite", "-o", out).code == 0
    result = cli("profile", out / "bert.tflite", "--target", "host", "--sequence-length", "16")
    assert result.code == 1 and "no-dynamic-sequence" in result.stderr
    assert "fixed the sequence at 64 tokens" in _words(result.stderr)
    # nor an artifact without a text encoder's axis
    assert cli("export", "builtin:digits-cnn", "-f", "onnx", "-o", out).code == 0
    result = cli("profile", out / "digits-cnn.onnx", "--target", "host",
                 "--sequence-length", "16")
    assert result.code == 1 and "records no dynamic sequence axis" in _words(result.stderr)


def test_long_texts_are_truncated_with_one_counted_warning(cli, folders):
    result = cli("inspect", f"hf:{folders['bert']}", "--data", folders["long"], "--json")
    assert result.code == 0, result.stderr
    assert _words(result.stderr).count("longer than the model's 64 tokens") == 1
    assert "2 of 4 texts are longer" in _words(result.stderr)
    data = _result(result.stdout)["data"]
    assert data["count"] == 4 and data["shapes"]["input_ids"] == [4, 64]


def test_input_options_pick_another_sequence_length_and_text_follows_it(cli, folders,
                                                                           tmp_path):
    lengths = [f"{name}:1x16:int64" for name in ("input_ids", "attention_mask",
                                                  "token_type_ids")]
    result = cli("inspect", f"hf:{folders['bert']}", *[a for x in lengths for a in
                                                       ("--input", x)],
                 "--data", folders["long"], "--json")
    assert result.code == 0, result.stderr
    document = _result(result.stdout)
    assert [s["shape"] for s in document["inputs"]] == [[1, 16]] * 3
    assert document["data"]["shapes"]["input_ids"] == [4, 16]
    assert "2 of 4 texts are longer than the model's 16 tokens" in _words(result.stderr)
    # shapes given on the command line are fixed in every format, the sequence too
    out = tmp_path / "out"
    result = cli("export", f"hf:{folders['bert']}", *[a for x in lengths for a in
                                                      ("--input", x)], "-o", out, "--json")
    assert result.code == 0, result.stderr
    (artifact,) = _result(result.stdout)["artifacts"]
    assert [s["shape"] for s in artifact["inputs"]] == [[1, 16]] * 3
    assert "dynamic_axes" not in artifact["source"]["options"]
    assert "dynamic_axes" not in artifact["parity"]


def test_a_hub_id_is_refused_without_touching_the_network(cli, monkeypatch, tmp_path):
    attempts: list[object] = []

    def no_network(self, address):  # any connection attempt is recorded and fails
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: attempts.append(a) or [])
    monkeypatch.chdir(tmp_path)  # no folder called bert-base-uncased here
    result = cli("export", "hf:bert-base-uncased", "-f", "onnx", "-o", tmp_path / "out")
    assert result.code == 1
    assert "hf-not-a-folder" in result.stderr
    assert "huggingface-cli download" in result.stderr
    assert attempts == []


class _Touch:
    """Unpickling this creates a file: what a hostile pytorch_model.bin could do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_pickled_weights_are_refused_without_the_trust_flag(cli, folders, tmp_path):
    import shutil

    import torch

    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(folders["bert"] / "config.json", folder / "config.json")
    marker = tmp_path / "ran"
    torch.save({"weight": _Touch(marker)}, folder / "pytorch_model.bin")
    result = cli("inspect", f"hf:{folder}")
    assert result.code == 1
    assert "pickle-refused" in result.stderr and "--trust-pickle" in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("remove, reference", [("config.json", "hf-no-config"),
                                               ("model.safetensors", "hf-no-weights")])
def test_a_folder_without_config_or_weights_is_refused(cli, folders, tmp_path, remove,
                                                       reference):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(folders["bert"], folder)
    (folder / remove).unlink()
    result = cli("inspect", f"hf:{folder}")
    assert result.code == 1
    assert reference in result.stderr and "internal-error" not in result.stderr


def test_an_architecture_transformers_does_not_define_is_refused(cli, folders, tmp_path):
    import shutil

    folder = tmp_path / "custom"
    folder.mkdir()
    shutil.copy(folders["bert"] / "model.safetensors", folder / "model.safetensors")
    config = json.loads((folders["bert"] / "config.json").read_text())
    config.update(model_type="my-own-bert", architectures=["MyOwnBert"],
                  auto_map={"AutoModel": "modeling_mine.MyOwnBert"})
    (folder / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "imported"
    (folder / "modeling_mine.py").write_text(f"open({str(marker)!r}, 'w')\n")
    result = cli("inspect", f"hf:{folder}")
    assert result.code == 1
    assert "hf-load-failed" in result.stderr and "trust_remote_code" in result.stderr
    assert not marker.exists()  # the folder's own code never ran


def test_text_data_without_a_tokenizer_in_the_folder_is_refused(cli, folders):
    result = cli("inspect", f"hf:{folders['bare']}", "--data", folders["texts"])
    assert result.code == 1
    assert "hf-no-tokenizer" in result.stderr
    assert str(folders["bare"].resolve()) in result.stderr
    assert "tokenizer.save_pretrained" in result.stderr


def test_text_data_for_a_model_without_a_tokenizer_is_refused(cli, folders):
    result = cli("inspect", "builtin:digits-cnn", "--data", folders["texts"])
    assert result.code == 1
    assert "text-needs-tokenizer" in result.stderr


def test_help_imports_neither_torch_nor_transformers():
    code = ("import sys\nfrom edgepipe.cli.main import run\n"
            "try:\n    run(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_safetensors_header_of_128_bytes_is_not_taken_for_a_pickle():
    import pickle
    import struct

    from edgepipe.model.files import sniff

    header = b'{"__metadata__":{"format":"pt"}}'.ljust(128)
    assert struct.pack("<Q", len(header))[:2] == b"\x80\x00"  # as a pickle's PROTO 0 starts
    assert sniff(struct.pack("<Q", len(header)) + header) == "safetensors file"
    assert sniff(pickle.dumps({"a": 1}, protocol=2)) == "Python pickle"


def test_int4_weight_with_data_on_text_in_every_runtime(cli, folders, tmp_path):
    """The data-aware int4 paths calibrate on tokenized text: LiteRT's model takes int32
    token ids where the text gives int64, and the calibration is cast to them."""
    out = tmp_path / "out"
    result = cli("compress", f"hf:{folders['bert']}", "--method", "int4-weight", "--data-aware",
                 "--group-size", "32", "-f", "onnx", "-f", "openvino", "-f", "tflite",
                 "--data", folders["tsv"], "-o", out, "--json")
    assert result.code == 0, result.stderr
    artifacts = _result(result.stdout)["artifacts"]
    assert sorted(a["format"] for a in artifacts) == ["onnx", "openvino", "tflite"]
    for artifact in artifacts:
        assert artifact["tool"]["calibration_samples"] > 0, artifact["name"]
        (check,) = artifact["metrics"]["eval"]["outputs"]
        assert check["sqnr_db"] > 10, (artifact["name"], check)


def test_tflite_int4_embeddings_follow_keep_8bit(cli, folders, tmp_path):
    """ai-edge-quantizer's recipe puts EMBEDDING_LOOKUP tables in 4-bit blocks too (its
    default, listed per table); --keep-8bit gives them int8 rows instead, stored as integers."""
    sizes, bits = {}, {}
    for choice in (None, "--keep-8bit"):
        out = tmp_path / str(choice)
        result = cli("compress", f"hf:{folders['bert']}", "--method", "int4-weight",
                     "--group-size", "32", "-f", "tflite", *([choice] if choice else []),
                     "--data", folders["texts"], "-o", out, "--json")
        assert result.code == 0, result.stderr
        (artifact,) = _result(result.stdout)["artifacts"]
        tables = [r for r in artifact["tool"]["weight_layers"] if r["op"] == "EMBEDDING_LOOKUP"]
        assert [(r["in_features"], r["out_features"]) for r in tables] == [(1000, 32), (2, 32)]
        bits[choice] = {r.get("bits") for r in tables}  # a table left float has no bits
        sizes[choice] = artifact["size_bytes"]
    assert bits == {None: {4}, "--keep-8bit": {8}}
    assert sizes[None] < sizes["--keep-8bit"]  # 1000 x 32 in 4 rather than 8 bits


@pytest.mark.parametrize("choice, bits", [(None, None), ("--keep-8bit", 8), ("--all-4bit", 4)])
def test_onnx_int4_embeddings_follow_keep_8bit(cli, folders, tmp_path, choice, bits):
    """ONNX Runtime's default leaves the embedding tables float (listed, with the reason);
    --keep-8bit stores them as int8 rows, --all-4bit as GatherBlockQuantized 4-bit blocks."""
    import onnx

    out = tmp_path / "out"
    result = cli("compress", f"hf:{folders['bert']}", "--method", "int4-weight", "-f", "onnx",
                 "--group-size", "32", *([choice] if choice else []), "--data",
                 folders["texts"], "-o", out, "--json")
    assert result.code == 0, result.stderr
    (artifact,) = _result(result.stdout)["artifacts"]
    tables = [r for r in artifact["tool"]["weight_layers"] if r["op"] == "Gather"]
    assert {r["in_features"] for r in tables} >= {1000, 2}  # words, token types
    assert artifact["tool"]["accuracy_level"] == 4
    model = onnx.load(str(out / artifact["path"]))
    floats = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT
              and list(i.dims) == [1000, 32]]  # the word embeddings
    if bits is None:
        assert all(r["kept"] == "float" and "default" in r["reason"] for r in tables)
        assert len(floats) == 1  # the table is still there, float
    else:
        assert all(r["bits"] == bits for r in tables), tables
        assert floats == []  # no float table is left in the file
        ops = {n.op_type for n in model.graph.node}
        assert ("GatherBlockQuantized" in ops) == (bits == 4)
    (check,) = artifact["metrics"]["eval"]["outputs"]
    assert check["sqnr_db"] > 10, check


@pytest.mark.parametrize("fmt, files", [("onnx", [".onnx"]), ("openvino", [".xml", ".bin"]),
                                        ("tflite", [".tflite"])])
def test_int4_budget_keeps_the_most_sensitive_layers_in_8_bits(cli, folders, tmp_path, fmt,
                                                               files):
    """--max-drop with int4-weight: layers go back to 8 bits (not float), most sensitive
    first; a budget no step meets exits 1 and keeps the best artifact, whole."""
    out = tmp_path / "out"
    result = cli("compress", f"hf:{folders['bert']}", "--method", "int4-weight", "-f", fmt,
                 "--group-size", "32", "--max-drop", "0", "--data", folders["texts"],
                 "-o", out)
    assert result.code == 1 and "budget-not-met" in result.stderr, result.stderr
    assert "kept in 8 bits" in _words(result.stderr)
    table = json.loads((out / "sensitivity.json").read_text())
    (entry,) = table.values() if "layers" not in table else [table]
    assert entry["precision"] == "int4" and entry["backup_precision"] == "int8"
    ranking = [row["layer"] for row in entry["layers"]]
    assert len(ranking) >= 12  # 2 blocks x (q, k, v, out, two feed-forward) and more
    manifest = json.loads((out / "manifest.json").read_text())
    (artifact,) = [a for a in manifest["artifacts"] if "over-budget" in a["path"]]
    for suffix in files:
        assert (out / artifact["path"]).with_suffix(suffix).is_file()
    budget = artifact["metrics"]["budget"]
    assert budget["backup_precision"] == "int8" and budget["met"] is False
    assert set(budget["kept"]) == set(ranking[:len(budget["kept"])])  # most sensitive first
    assert set(budget["layers"].values()) <= {"int4", "int8"}
    rows = {r["layer"]: r for r in artifact["tool"]["weight_layers"]}
    for name in budget["kept"]:
        assert rows[name]["bits"] == 8 and "budget" in rows[name]["reason"], rows[name]
    steps = budget["steps"]
    assert steps[0]["kept"] == [] and len(steps) == len(ranking)  # the last stays 4-bit
    assert min(s["drop"] for s in steps) < steps[0]["drop"]
