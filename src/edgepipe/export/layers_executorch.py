"""Per-operator comparison of a ``.pte`` that failed parity, with ExecuTorch's own numeric
debugger: where does the program first go wrong?

ExecuTorch keeps no module names in a program, so the model is lowered again the way the
export lowered it (same ``torch.export``, same XNNPACK partitioner) with an ETRecord, the
record that maps each instruction's debug handle back to the graph's nodes, and their
nodes to the module that made them. The *artifact itself* is then run once with ETDump and
a debug buffer, which keep every instruction's output; the devtools Inspector pairs those
with the same nodes run in torch (``calculate_numeric_gap``). Whether the re-lowering gave
the artifact's very bytes is recorded (``reproduced``): when it did not (a file changed
after export), the pairing still holds while the graph is the same.

The granularity is ExecuTorch's: an operator on the portable kernels has its own output,
an XNNPACK delegate only the outputs it hands back, so a model lowered whole into one
delegate has one row. A delegate with several outputs is left out: the Inspector's pairing
of those outputs was seen to swap them (a correct program read 0.5 apart).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.export.validate import compare_one

DEBUG_BUFFER_BYTES = 256 << 20  # every instruction's output for one run of the sample


def compare_pte_layers(module: Any, sample: list[np.ndarray], artifact: Path, atol: float,
                       dynamic_shapes: Any = None) -> dict[str, Any]:
    """Each portable operator's and each single-output XNNPACK delegate's output in
    ``artifact`` against torch's, in program order; the first over ``atol``."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.devtools import Inspector
    from executorch.exir import to_edge_transform_and_lower
    from executorch.extension.pybindings import portable_lib

    from edgepipe.export.base import quiet_tool

    # the Inspector says on the root logger when it pairs with the edge graph (always here:
    # the ATen graph of a lowered program has lost the debug handles of its symbolic shapes)
    logging.getLogger("executorch.devtools.inspector._inspector").setLevel(logging.ERROR)
    args = tuple(torch.from_numpy(np.ascontiguousarray(a[:1])) for a in sample)
    with quiet_tool("executorch"), tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        program = torch.export.export(module.eval(), args, dynamic_shapes=dynamic_shapes)
        edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()],
                                           generate_etrecord=True)
        lowered = edge.to_executorch()
        record = lowered.get_etrecord()
        record.update_representative_inputs(args)
        record.save(str(work / "record.etrecord"))
        reproduced = lowered.buffer == artifact.read_bytes()
        method = portable_lib._load_for_executorch(str(artifact), enable_etdump=True,
                                                   debug_buffer_size=DEBUG_BUFFER_BYTES)
        method.run_method("forward", args)
        method.write_etdump_result_to_file(str(work / "run.etdp"), str(work / "run.bin"))
        inspector = Inspector(etdump_path=str(work / "run.etdp"),
                              etrecord=str(work / "record.etrecord"),
                              debug_buffer_path=str(work / "run.bin"))
        table = inspector.calculate_numeric_gap(_max_abs_diff())
        paths = _module_paths(record.edge_dialect_program)
    handles = table["aot_debug_handle"].map(str)
    single = handles.map(handles.value_counts()) == 1
    rows = []
    for _, row in table[single].iterrows():
        expected, actual = row["aot_intermediate_output"], row["runtime_intermediate_output"]
        if not (hasattr(expected, "shape") and hasattr(actual, "shape")) or \
                tuple(expected.shape) != tuple(actual.shape) or \
                not expected.dtype.is_floating_point:
            continue
        ops = list(row["aot_ops"])
        layer = next((paths[op] for op in reversed(ops) if paths.get(op)), ops[-1])
        parity = compare_one(layer, expected.detach().float().numpy(),
                             actual.detach().float().numpy(), atol)
        rows.append({"layer": layer, "ops": ops,
                     "runs_on": "XNNPACK delegate" if "DELEGATE_CALL" in row["runtime_ops"]
                     else "portable kernel",
                     "max_abs_diff": parity.max_abs_diff, "limit": parity.limit,
                     "sqnr_db": parity.to_dict()["sqnr_db"], "passed": parity.passed})
    first = next((row["layer"] for row in rows if not row["passed"]), None)
    return {"available": bool(rows), "compared": len(rows), "first_divergent": first,
            "layers": rows, "reproduced": reproduced,
            "how": "ExecuTorch's numeric debugger (ETRecord of a re-lowering, ETDump and "
                   "debug buffer of the artifact's run); XNNPACK delegates show only their "
                   "outputs", **({} if rows else {"reason": "no operator output could be "
                                                  "paired with the graph"})}


def _max_abs_diff() -> Any:
    """A comparator for the Inspector: max |difference|, NaN where the two do not line up
    (the rows are compared again, with the tolerance, here)."""
    import torch
    from executorch.devtools.inspector.numerical_comparator.numerical_comparator_base import (
        NumericalComparatorBase,
    )

    class MaxAbsDiff(NumericalComparatorBase):  # type: ignore[misc]
        def element_compare(self, a: Any, b: Any) -> float:
            try:
                return float((torch.as_tensor(a).double() - torch.as_tensor(b).double())
                             .abs().max())
            except (RuntimeError, TypeError, ValueError):
                return float("nan")

    return MaxAbsDiff()


def _module_paths(program: Any) -> dict[str, str]:
    """Edge graph node name -> the path of the innermost module that made it."""
    paths = {}
    for node in program.graph.nodes:
        stack = node.meta.get("nn_module_stack")
        if stack:
            paths[node.name] = str(list(stack.values())[-1][0])
    return paths
