"""One home per vocabulary: formats (edgepipe.formats) and compression methods
(edgepipe.compress.METHODS). The CLI's choices equal the registries, no module restates
the format / suffix / runtime mapping, and a format added by one registry entry and one
module (tests/dummy_format.py) is exported, checked and recorded like the others."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from edgepipe import formats
from edgepipe.errors import InputError

SRC = Path(__file__).resolve().parents[1] / "src" / "edgepipe"


def test_cli_enums_equal_their_registries() -> None:
    from edgepipe.cli.compress_cmd import Calibration, Method
    from edgepipe.cli.export_cmd import Format
    from edgepipe.cli.serve_cmd import ServeRuntime
    from edgepipe.compress.config import CALIBRATIONS, METHODS, method_names

    assert [f.value for f in Format] == list(formats.export_formats())
    assert [r.value for r in ServeRuntime] == list(formats.served_runtimes())
    assert [m.value for m in Method] == list(method_names())
    assert set(method_names()) == set(METHODS)
    assert [c.value for c in Calibration] == list(CALIBRATIONS)


def test_recipe_and_configs_take_the_registry_vocabulary() -> None:
    from edgepipe.compress.config import make_config
    from edgepipe.export.config import FORMATS, ExportConfig
    from edgepipe.pipeline.recipe import Variant

    assert formats.export_formats() == FORMATS
    assert ExportConfig(formats=formats.export_formats()).formats == formats.export_formats()
    for name in formats.export_formats():
        assert Variant(name="v", method="float", formats=[name]).formats == [name]
    with pytest.raises(ValueError, match=", ".join(formats.export_formats())):
        Variant(name="v", method="float", formats=["nope"])
    with pytest.raises(InputError) as caught:
        make_config("int8", formats=("nope",))
    assert caught.value.reference == "unknown-format"
    assert ", ".join(formats.export_formats()) in caught.value.hint


def test_format_registry_is_consistent() -> None:
    entries = formats.all_formats()
    for key in ("name", "suffix", "runtime"):
        values = [getattr(f, key) for f in entries]
        assert len(values) == len(set(values)), key
    for fmt in entries:
        assert fmt.suffix.startswith(".") and fmt.suffix == fmt.suffix.lower()
        module, _, function = fmt.opener.partition(":")
        assert function and importlib.util.find_spec(module) is not None, fmt.opener
        for path in (fmt.exporter, fmt.support_tool and fmt.support_tool.partition(":")[0]):
            assert path is None or importlib.util.find_spec(path) is not None, path
        if fmt.validator is not None:  # imported only when a file is checked: resolve it now
            assert callable(formats.load(fmt.validator)), fmt.validator
        assert formats.by_suffix(fmt.suffix.upper()) is fmt
        assert formats.by_runtime(fmt.runtime) is fmt
    assert set(formats.served_runtimes()) <= {f.runtime for f in entries if f.exportable}


def test_every_method_names_its_formats_once() -> None:
    from edgepipe.compress import BACKENDS
    from edgepipe.compress.config import METHODS, method_formats

    for name, cls in METHODS.items():
        assert cls.backends, name
        assert method_formats(name) == tuple(cls.backends)
        for fmt, module in cls.backends.items():
            assert fmt in formats.export_formats(), (name, fmt)
            assert importlib.util.find_spec(module) is not None, module
            assert BACKENDS[(cls, fmt)] == module
    assert len(BACKENDS) == sum(len(c.backends) for c in set(METHODS.values()))


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(), str(path))) for path in sorted(SRC.rglob("*.py"))
            if path != SRC / "formats.py"]


def _strings(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_no_second_copy_of_the_format_mapping() -> None:
    entries = formats.all_formats()
    vocabulary = ({f.name for f in entries} | {f.suffix for f in entries}
                  | {f.runtime for f in entries})
    exportable = set(formats.export_formats())
    copies = []
    for path, tree in _modules():
        where = path.relative_to(SRC)
        strings = _strings(tree)
        # a suffix and its runtime in one module, for two or more formats
        paired = [f.name for f in entries if f.suffix in strings and f.runtime in strings]
        if len(paired) >= 2:
            copies.append(f"{where}: suffix and runtime of {paired}")
        # errors.EXTRAS maps Python modules to pip extras; some extras share a format's name
        # (openvino, executorch) without being the format vocabulary
        extras = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Assign)
                  and any(isinstance(t, ast.Name) and t.id == "EXTRAS" for t in n.targets)}
        for node in ast.walk(tree):
            # a literal dict between the vocabularies: {"onnx": ".onnx", ...}
            if isinstance(node, ast.Dict) and id(node) not in extras:
                pairs = [(k.value, v.value) for k, v in zip(node.keys, node.values, strict=True)
                         if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)
                         and k.value in vocabulary and v.value in vocabulary]
                if len(pairs) >= 2:
                    copies.append(f"{where}:{node.lineno}: dict {pairs}")
            # a literal list of every exportable format: ("onnx", "tflite", "openvino")
            if isinstance(node, ast.Tuple | ast.List | ast.Set):
                names = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                if exportable <= names:
                    copies.append(f"{where}:{node.lineno}: every format listed")
            # an Enum class spelling out formats, runtimes or methods
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(b, ast.Name) and b.id.endswith("Enum") for b in node.bases):
                values = _strings(node) & (vocabulary | _method_names())
                if len(values) >= 2:
                    copies.append(f"{where}:{node.lineno}: enum {node.name} {sorted(values)}")
    assert not copies, "the format/method vocabulary is restated outside its registry " \
        "(edgepipe/formats.py, compress METHODS):\n" + "\n".join(copies)


def _method_names() -> set[str]:
    from edgepipe.compress.config import METHODS

    return set(METHODS)


def test_a_format_is_one_module_and_one_registry_entry(monkeypatch, tmp_path) -> None:
    import torch

    from edgepipe.export import ExportConfig, export_model
    from edgepipe.model import LoadedModel
    from edgepipe.runtime import open_artifact
    from edgepipe.tensors import TensorSpec

    with pytest.raises(InputError):
        ExportConfig(formats=("dummy",))
    # the one registry line:
    monkeypatch.setitem(formats.REGISTRY, "dummy", formats.Format(
        "dummy", "Dummy", ".npw", "numpy-dummy", "numpy", "dummy_format:open_session",
        exporter="dummy_format"))

    torch.manual_seed(0)
    model = LoadedModel(spec="linear", kind="torch", inputs=[TensorSpec("x", (2, 4))],
                        module=torch.nn.Linear(4, 3).eval())
    result = export_model(model, tmp_path / "out", formats=("onnx", "dummy"))
    assert result.ok
    records = {a["format"]: a for a in result.artifacts}
    assert records["dummy"]["name"] == "linear.npw"
    assert records["dummy"]["parity"]["passed"]
    assert records["dummy"]["parity"]["runtime"]["runtime"] == "numpy-dummy"
    assert result.support["formats"]["dummy"]["status"] == "not-checked"

    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    ours = open_artifact(tmp_path / "out" / "linear.npw").run([x])[0]
    theirs = open_artifact(tmp_path / "out" / "linear.onnx").run([x])[0]
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_register_refuses_a_clashing_suffix_or_runtime(monkeypatch) -> None:
    monkeypatch.setattr(formats, "REGISTRY", dict(formats.REGISTRY))
    onnx = formats.get("onnx")
    with pytest.raises(ValueError, match="clashes with 'onnx'"):
        formats.register(formats.Format("other", "Other", onnx.suffix, "other-rt", "Other",
                                        onnx.opener))
    with pytest.raises(ValueError, match="clashes with 'onnx'"):
        formats.register(formats.Format("other", "Other", ".other", onnx.runtime, "Other",
                                        onnx.opener))
    added = formats.register(formats.Format("other", "Other", ".other", "other-rt", "Other",
                                            onnx.opener, exporter="edgepipe.export.onnx"))
    assert formats.by_suffix(".other") is added and "other" in formats.export_formats()
