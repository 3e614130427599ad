"""Check an export independently: load every artifact of a run directory with its runtime's
own Python API (not edgepipe's runtime layer), run it on the samples its parity check used,
and compare with the torch model, under the tolerance recorded in manifest.json.

    python examples/check_artifacts.py OUT

Exit status 0 when every artifact agrees, 1 otherwise. Uses edgepipe only to rebuild the
inputs (the DATA spec, split and seed the manifest names) and the torch reference.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


def run_openvino(path: Path, x: np.ndarray) -> np.ndarray:
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return np.concatenate([compiled([x[i:i + 1]])[0] for i in range(len(x))])


def run_tflite(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    nhwc = list(inp["shape"]) != list(x.shape[1:]) and inp["shape"][-1] == x.shape[1]
    results = []
    for i in range(len(x)):
        sample = x[i:i + 1].transpose(0, 2, 3, 1) if nhwc else x[i:i + 1]
        interpreter.set_tensor(inp["index"], np.ascontiguousarray(sample))
        interpreter.invoke()
        results.append(interpreter.get_tensor(out["index"]).copy())
    return np.concatenate(results)


RUNNERS = {"onnx": run_onnx, "openvino": run_openvino, "tflite": run_tflite}


def main(out: Path) -> int:
    from edgepipe.data import load_data_for_model, make_splits
    from edgepipe.model import load_model, run_torch

    manifest = json.loads((out / "manifest.json").read_text())
    failures = 0
    for artifact in manifest["artifacts"]:
        source, parity = artifact["source"], artifact["parity"]
        inputs = parity["inputs"]
        model = load_model(source["spec"], weights=source["weights"])
        if inputs["kind"] == "data":
            data = load_data_for_model(inputs["source"], model.inputs)
            x = make_splits(data, seed=inputs["seed"]).eval.x[: inputs["count"]]
        else:
            x = model.sample_inputs(inputs["batch"], inputs["seed"])[0]
        reference = np.concatenate([run_torch(model.module, [x[i:i + 1]])[0]
                                    for i in range(len(x))])
        got = RUNNERS[artifact["format"]](out / artifact["path"], x)
        limit = parity["outputs"][0]["limit"]
        worst = float(np.abs(got - reference).max())
        agree = float((got.argmax(1) == reference.argmax(1)).mean())
        ok = worst <= limit
        failures += not ok
        print(f"{artifact['name']:<28} {artifact['format']:<9} max|diff| {worst:.3g} "
              f"(limit {limit:.3g}) top-1 agreement {agree:.0%} {'ok' if ok else 'FAILED'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
