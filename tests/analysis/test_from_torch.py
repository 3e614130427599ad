"""Torch graphs: exact parameter counts and MACs on tiny models, computed by hand."""

from __future__ import annotations

import tiny_models
from edgepipe.analysis import build_graph, inspect_model
from edgepipe.model import LoadedModel, load_model
from edgepipe.tensors import TensorSpec


def _loaded(module: tiny_models.nn.Module, *specs: TensorSpec) -> LoadedModel:
    return LoadedModel("test", "torch", list(specs), module=module.eval())


def test_mlp_params_and_macs() -> None:
    summary = inspect_model(load_model("tiny_models:mlp", input_shape=(1, 64)))
    assert summary.method == "torch.fx"
    assert summary.total_params == (64 * 32 + 32) + (32 * 10 + 10)
    assert summary.total_macs == 64 * 32 + 32 * 10
    assert [layer.op_type for layer in summary.layers] == ["Linear", "ReLU", "Linear"]
    assert summary.layers[0].output_shapes == [[1, 32]]
    assert summary.layers[0].output_bytes == 32 * 4
    assert summary.size_source == "in-memory-parameters-and-buffers"
    assert summary.size_bytes == summary.total_params * 4


def test_conv_zoo_plain_depthwise_transposed_and_linear() -> None:
    summary = inspect_model(load_model("tiny_models:conv_zoo", input_shape=(1, 3, 16, 16)))
    per_layer = {layer.name: (layer.params, layer.macs) for layer in summary.layers}
    assert per_layer["conv"] == (4 * 3 * 9 + 4, (4 * 8 * 8) * (3 * 9))
    assert per_layer["depthwise"] == (4 * 9, (4 * 8 * 8) * 9)
    assert per_layer["up"] == (4 * 2 * 4 + 2, (4 * 8 * 8) * (2 * 4))
    assert per_layer["fc"] == (512 * 5 + 5, 512 * 5)
    assert summary.total_params == sum(p for p, _ in per_layer.values())
    assert summary.total_macs == 6912 + 2304 + 2048 + 2560


def test_shared_weights_count_once() -> None:
    summary = inspect_model(_loaded(tiny_models.SharedLinear(), TensorSpec("x", (1, 6))))
    assert summary.total_params == 6 * 6 + 6
    assert sum(layer.params for layer in summary.layers) == summary.total_params
    assert summary.total_macs == 2 * 6 * 6
    assert [layer.name for layer in summary.layers if layer.op_type == "Linear"] == [
        "fc", "fc#2"]


def test_two_inputs_with_int64_token_ids() -> None:
    loaded = load_model("tiny_models:two_input_model", inputs=[
        TensorSpec("input_ids", (1, 7), "int64"), TensorSpec("mask", (1, 7), "float32")])
    summary = inspect_model(loaded)
    assert [(i["name"], i["dtype"]) for i in summary.inputs] == [
        ("input_ids", "int64"), ("mask", "float32")]
    assert summary.total_params == 50 * 16 + (16 * 3 + 3)
    assert summary.total_macs == 16 * 3  # the embedding is a lookup, not MACs
    embed = next(layer for layer in summary.layers if layer.op_type == "Embedding")
    assert embed.output_shapes == [[1, 7, 16]]
    # The seeded ids reach 99 (vocab 50): shapes come from zero inputs, and a note says so.
    assert any("zero inputs" in note for note in summary.notes)


def test_data_dependent_branch_goes_through_torch_export() -> None:
    loaded = load_model("tiny_models:data_dependent_model", input_shape=(2, 8))
    summary = inspect_model(loaded)
    assert summary.method.startswith("torch.export")
    assert any("torch.fx could not trace" in note for note in summary.notes)
    assert summary.total_params == 2 * (8 * 4 + 4)  # both branches' modules exist
    assert summary.total_macs == 2 * 8 * 4  # only the branch taken runs
    taken = "positive" if loaded.sample_inputs()[0].sum() > 0 else "negative"
    assert [layer.name for layer in summary.layers if layer.op_type == "linear"] == [taken]


def test_export_graph_agrees_with_fx_graph() -> None:
    from edgepipe.analysis.from_export import export_graph, export_program
    from edgepipe.analysis.lifetimes import plan_memory

    loaded = load_model("tiny_models:residual_cnn", input_shape=(1, 3, 16, 16))
    fx = build_graph(loaded)
    import torch

    program, method = export_program(loaded.module, [torch.from_numpy(loaded.sample_inputs()[0])])
    exported = export_graph(program, method)
    assert method == "torch.export"
    assert sum(n.params for n in exported.nodes) == sum(n.params for n in fx.nodes)
    assert sum(n.macs for n in exported.nodes) == sum(n.macs for n in fx.nodes)
    assert plan_memory(exported).peak_bytes == plan_memory(fx).peak_bytes
    assert [n.name for n in exported.nodes if n.macs] == [n.name for n in fx.nodes if n.macs]


def test_multihead_attention_counts_projections_and_products() -> None:
    loaded = _loaded(tiny_models.SelfAttention(), TensorSpec("x", (1, 5, 16)))
    summary = inspect_model(loaded)
    assert summary.total_params == 4 * 16 * 16 + 4 * 16
    assert summary.total_macs == 4 * 5 * 16 * 16 + 2 * 5 * 5 * 16
    assert summary.outputs == [{"name": summary.outputs[0]["name"], "shape": [1, 5, 16],
                                "dtype": "float32"}]


def test_pt2_program_keeps_module_paths(tmp_path) -> None:
    import torch

    module = tiny_models.ResidualCNN().eval()
    path = tmp_path / "residual.pt2"
    torch.export.save(torch.export.export(module, (torch.randn(1, 3, 16, 16),)), str(path))
    summary = inspect_model(load_model(str(path)))
    reference = inspect_model(load_model("tiny_models:residual_cnn", input_shape=(1, 3, 16, 16)))
    assert summary.method == "torch.fx (the GraphModule as loaded)"
    assert (summary.total_params, summary.total_macs, summary.peak_activation_bytes) == (
        reference.total_params, reference.total_macs, reference.peak_activation_bytes)
    assert [n.name for n in summary.layers if n.macs] == ["stem.0", "conv1", "conv2", "fc"]
    assert summary.size_source == "model-file"
    assert summary.size_bytes == path.stat().st_size
