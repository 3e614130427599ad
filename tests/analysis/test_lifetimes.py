"""Peak activation memory: hand-built graphs and tiny torch models, checked by hand."""

from __future__ import annotations

from torch import nn

from edgepipe.analysis import Graph, OpNode, TensorInfo, inspect_model, plan_memory
from edgepipe.model import LoadedModel, load_model
from edgepipe.tensors import TensorSpec


def _graph(nodes: list[OpNode], sizes: dict[str, int], inputs: list[str],
           outputs: list[str]) -> Graph:
    """A graph whose tensors are uint8 vectors, so a tensor of n elements is n bytes."""
    tensors = {name: TensorInfo(name, (size,), "uint8") for name, size in sizes.items()}
    return Graph(nodes, tensors, inputs, outputs, method="hand-built")


def test_sequential_chain_frees_each_tensor_after_its_consumer() -> None:
    graph = _graph(
        [OpNode("a", "op", ["x"], ["t1"]), OpNode("b", "op", ["t1"], ["t2"]),
         OpNode("c", "op", ["t2"], ["y"])],
        {"x": 100, "t1": 50, "t2": 30, "y": 10}, ["x"], ["y"],
    )
    plan = plan_memory(graph)
    # a: x + t1; b: t1 + t2 (x is dead); c: t2 + y
    assert plan.live_bytes == [150, 80, 40]
    assert plan.peak_bytes == 150
    assert plan.peak_index == 0


def test_residual_keeps_the_skip_tensor_alive() -> None:
    graph = _graph(
        [OpNode("stem", "op", ["x"], ["s"]), OpNode("conv1", "op", ["s"], ["h1"]),
         OpNode("conv2", "op", ["h1"], ["h2"]), OpNode("add", "op", ["s", "h2"], ["y"])],
        {"x": 10, "s": 40, "h1": 40, "h2": 40, "y": 40}, ["x"], ["y"],
    )
    plan = plan_memory(graph)
    # conv2 runs while s (needed by add), h1 and h2 are all live.
    assert plan.live_bytes == [50, 80, 120, 120]
    assert plan.peak_bytes == 120
    assert graph.nodes[plan.peak_index].name == "conv2"


def test_views_allocate_nothing_and_extend_the_aliased_buffer() -> None:
    graph = _graph(
        [OpNode("conv", "op", ["x"], ["c"]),
         OpNode("flatten", "Flatten", ["c"], ["f"], aliases={"f": "c"}),
         OpNode("other", "op", ["x"], ["o"]),
         OpNode("fc", "op", ["f", "o"], ["y"])],
        {"x": 8, "c": 64, "f": 64, "o": 4, "y": 2}, ["x"], ["y"],
    )
    plan = plan_memory(graph)
    # c stays live through f's last use at fc; flatten adds no bytes.
    assert plan.live_bytes == [72, 72, 76, 70]


def test_graph_outputs_live_to_the_end_and_dead_outputs_are_freed_at_once() -> None:
    graph = _graph(
        [OpNode("a", "op", ["x"], ["early", "unused"]), OpNode("b", "op", ["x"], ["late"])],
        {"x": 1, "early": 10, "unused": 100, "late": 1000}, ["x"], ["early", "late"],
    )
    plan = plan_memory(graph)
    assert plan.live_bytes == [111, 1011]


def test_graph_without_ops_reports_its_inputs() -> None:
    plan = plan_memory(_graph([], {"x": 12}, ["x"], ["x"]))
    assert (plan.peak_bytes, plan.peak_index, plan.live_bytes) == (12, None, [])


def test_mlp_peak_by_hand() -> None:
    loaded = load_model("tiny_models:mlp", input_shape=(1, 64))
    summary = inspect_model(loaded)
    # float32: x 64*4=256 B, h 32*4=128 B, relu 128 B, out 10*4=40 B
    assert [layer.live_bytes for layer in summary.layers] == [256 + 128, 128 + 128, 128 + 40]
    assert summary.peak_activation_bytes == 384
    assert summary.peak_layer == "0"


def test_residual_cnn_keeps_skip_alive_by_hand() -> None:
    loaded = load_model("tiny_models:residual_cnn", input_shape=(1, 3, 16, 16))
    summary = inspect_model(loaded)
    fmap = 8 * 16 * 16 * 4  # one 8x16x16 float32 feature map
    live = {layer.name: layer.live_bytes for layer in summary.layers}
    assert live["stem.0"] == 3 * 16 * 16 * 4 + fmap
    # conv2 runs with the skip tensor, relu(conv1) and its own output live.
    assert live["conv2"] == 3 * fmap
    assert live["add"] == 3 * fmap
    assert summary.peak_activation_bytes == 3 * fmap


def test_inplace_relu_aliases_its_input() -> None:
    loaded = LoadedModel("block", "torch", [TensorSpec("x", (1, 2, 4, 4))],
                         module=nn.Sequential(nn.Conv2d(2, 4, 1), nn.ReLU(inplace=True)).eval())
    summary = inspect_model(loaded)
    conv, act = summary.layers
    assert act.allocates is False
    # the ReLU writes into conv's output: only that 4x4x4 float32 map is live
    assert act.live_bytes == conv.output_bytes == 4 * 16 * 4
    assert summary.peak_activation_bytes == 2 * 16 * 4 + 4 * 16 * 4  # input + conv output
