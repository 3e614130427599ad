"""Time the same float and int8 artifacts on another x86 host (e.g. one with VNNI).

The int8 speed-up of a runtime depends on the CPU's integer dot-product instructions:
AVX2-only CPUs multiply uint8 x int8 pairs with VPMADDUBSW (saturating, 16-bit), VNNI
CPUs (AVX512_VNNI / AVX_VNNI) with VPDPBUSD. This script lets the speed-up be measured on
a host that has VNNI when the development machine does not, with the artifacts edgepipe
made here, and the same timing loop (edgepipe.runtime sessions, plus OpenVINO's
``benchmark_app``).

Artifacts are large (resnet18: 45 MB float) and the way to the other host can be narrow,
so ``pack`` writes each artifact with its big weight tensors zeroed (they compress to
nothing) plus a list of where they are, and ``run`` refills them with seeded random values
of the same dtype and shape (float: N(0, 2/fan_in), He-scaled so activations stay O(1) and
no denormals appear; int8/uint8: uniform over the type's range) before timing. The graph,
quantization scales, zero points and every small tensor are the artifact's own. Weight
values do not change dense-kernel latency in these runtimes (none exploits sparsity by
default); the accuracy of these copies is meaningless and never measured.

    # here
    python benchmarks/int8_other_host.py pack --out .devcarry/r18 --model resnet18
    # there (needs numpy, onnx, onnxruntime; openvino / ai-edge-litert when present)
    PYTHONPATH=src python benchmarks/int8_other_host.py run .devcarry/r18 --threads 2
    python benchmarks/int8_other_host.py show benchmarks/measured/int8_resnet18_xeon_amx.json
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

MIN_ELEMENTS = 4096  # tensors at least this big are weights; smaller ones travel as they are
OV_TYPES = {"f32": np.float32, "i8": np.int8, "u8": np.uint8}


# ----------------------------------------------------------------------------------- pack
def pack(out: Path, model: str, calib: int) -> None:
    """Make the artifacts with edgepipe (and ORT quantizer variants), then strip weights."""
    from edgepipe.compress import compress, make_config
    from edgepipe.model import load_model

    work = Path(tempfile.mkdtemp(prefix="int8-pack-"))
    loaded = load_model(f"torchvision:{model}", model_args={"num_classes": 10},
                        input_shape=(1, 3, 224, 224))
    base = {"allow_random_calibration": True, "calib_size": calib}
    made = compress(loaded, make_config("int8", formats=("onnx", "openvino", "tflite"), **base),
                    work / "ours")
    nrr = compress(loaded, make_config("int8", formats=("onnx",), reduce_range=False, **base),
                   work / "ours-nrr")
    artifacts: list[tuple[str, Path]] = []
    for record in made.to_dict()["float_artifacts"] + made.to_dict()["artifacts"]:
        artifacts.append((f"{record['format']} {record['precision']} (edgepipe)",
                          work / "ours" / record["name"]))
    artifacts.append(("onnx int8 (edgepipe, --no-reduce-range)",
                      work / "ours-nrr" / nrr.to_dict()["artifacts"][0]["name"]))
    float_onnx = next(p for label, p in artifacts if label.startswith("onnx fp32"))
    artifacts += ort_variants(float_onnx, work / "ort", calib)
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for label, path in artifacts:
        files = strip(path, out / path.parent.name)
        index.append({"label": label, "path": f"{path.parent.name}/{path.name}", **files})
    (out / "index.json").write_text(json.dumps({"model": model, "artifacts": index}, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    print(f"packed {len(index)} artifacts into {out}")


def ort_variants(float_onnx: Path, work: Path, calib: int) -> list[tuple[str, Path]]:
    """onnxruntime.quantization.quantize_static at its defaults and in the formats that
    matter for speed: QDQ s8s8 / u8u8 / u8s8 per channel, and the QOperator format."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, name: str) -> None:
            rng = np.random.default_rng(0)
            self.items = iter([{name: rng.standard_normal((1, 3, 224, 224), np.float32)}
                               for _ in range(calib)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    import onnx

    work.mkdir(parents=True, exist_ok=True)
    pre = work / "pre.onnx"
    quant_pre_process(str(float_onnx), str(pre))
    name = onnx.load(str(pre), load_external_data=False).graph.input[0].name
    u8, s8 = QuantType.QUInt8, QuantType.QInt8
    variants = {
        "ort-defaults": dict(),  # QDQ, u8 activations, s8 weights, per tensor
        "qdq-u8s8-pc": dict(activation_type=u8, weight_type=s8, per_channel=True),
        "qdq-s8s8-pc": dict(activation_type=s8, weight_type=s8, per_channel=True),
        "qdq-u8u8-pc": dict(activation_type=u8, weight_type=u8, per_channel=True),
        "qop-u8s8-pc": dict(quant_format=QuantFormat.QOperator, activation_type=u8,
                            weight_type=s8, per_channel=True),
    }
    made = []
    for key, options in variants.items():
        path = work / f"{key}.onnx"
        quantize_static(str(pre), str(path), Reader(name), **options)
        made.append((f"onnx int8 quantize_static {key}", path))
    return made


def strip(path: Path, folder: Path) -> dict[str, Any]:
    """Copy an artifact with its big weights zeroed; return where they are."""
    folder.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".onnx":
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(path))
        tensors = []
        for init in model.graph.initializer:
            array = numpy_helper.to_array(init)
            if array.size >= MIN_ELEMENTS and array.dtype in (np.float32, np.int8, np.uint8):
                tensors.append({"name": init.name, "dtype": str(array.dtype),
                                "shape": list(array.shape)})
                init.CopyFrom(numpy_helper.from_array(np.zeros_like(array), init.name))
        onnx.save(model, str(folder / path.name))
        return {"tensors": tensors}
    if path.suffix == ".xml":
        shutil.copy(path, folder / path.name)
        blob = bytearray(path.with_suffix(".bin").read_bytes())
        tensors = []
        for layer in ET.parse(path).getroot().iter("layer"):
            data = layer.find("data")
            if layer.get("type") != "Const" or data is None:
                continue
            kind = data.get("element_type")
            shape = [int(s) for s in (data.get("shape") or "").split(",") if s.strip()]
            if kind in OV_TYPES and shape and int(np.prod(shape)) >= MIN_ELEMENTS:
                offset, size = int(data.get("offset")), int(data.get("size"))
                blob[offset:offset + size] = bytes(size)
                tensors.append({"offset": offset, "size": size, "dtype": kind, "shape": shape})
        (folder / path.with_suffix(".bin").name).write_bytes(bytes(blob))
        return {"tensors": tensors}
    if path.suffix == ".tflite":
        from ai_edge_litert import schema_py_generated as schema

        blob = bytearray(path.read_bytes())
        model = schema.Model.GetRootAs(blob, 0)
        graph = model.Subgraphs(0)
        names = {schema.TensorType.FLOAT32: "float32", schema.TensorType.INT8: "int8"}
        base = np.frombuffer(blob, np.uint8).__array_interface__["data"][0]
        tensors = []
        for i in range(graph.TensorsLength()):
            tensor = graph.Tensors(i)
            buffer = model.Buffers(tensor.Buffer())
            shape = list(tensor.ShapeAsNumpy()) if tensor.ShapeLength() else []
            if (tensor.Type() not in names or buffer.DataLength() == 0
                    or int(np.prod(shape)) < MIN_ELEMENTS):
                continue
            view = buffer.DataAsNumpy()
            offset = view.__array_interface__["data"][0] - base
            blob[offset:offset + view.nbytes] = bytes(view.nbytes)
            tensors.append({"offset": int(offset), "size": int(view.nbytes),
                            "dtype": names[tensor.Type()], "shape": [int(s) for s in shape]})
        (folder / path.name).write_bytes(bytes(blob))
        return {"tensors": tensors}
    raise SystemExit(f"cannot strip {path}")


# ------------------------------------------------------------------------------------ run
def fill(dtype: str, shape: list[int], rng: np.random.Generator) -> np.ndarray:
    kind = np.dtype(OV_TYPES.get(dtype, dtype))
    if kind == np.float32:
        fan_in = max(1, int(np.prod(shape)) // max(1, shape[0]))
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    info = np.iinfo(kind)
    return rng.integers(info.min + (kind == np.int8), info.max, size=shape,
                        endpoint=True).astype(kind)


def refill(folder: Path, entry: dict[str, Any], dest: Path) -> Path:
    """Write the artifact into ``dest`` with its stripped weights filled (seeded)."""
    rng = np.random.default_rng(0)
    source = folder / entry["path"]
    target = dest / entry["path"]
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix == ".onnx":
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(source))
        wanted = {t["name"]: t for t in entry["tensors"]}
        for init in model.graph.initializer:
            if init.name in wanted:
                t = wanted[init.name]
                init.CopyFrom(numpy_helper.from_array(fill(t["dtype"], t["shape"], rng),
                                                      init.name))
        onnx.save(model, str(target))
        return target
    blob_path = source.with_suffix(".bin") if source.suffix == ".xml" else source
    blob = bytearray(blob_path.read_bytes())
    for t in entry["tensors"]:
        values = fill(t["dtype"], t["shape"], rng).tobytes()
        assert len(values) == t["size"], (t, len(values))
        blob[t["offset"]:t["offset"] + t["size"]] = values
    if source.suffix == ".xml":
        shutil.copy(source, target)
        target.with_suffix(".bin").write_bytes(bytes(blob))
    else:
        target.write_bytes(bytes(blob))
    return target


def time_artifact(path: Path, threads: int, min_runs: int, min_seconds: float) -> dict[str, Any]:
    from edgepipe.runtime import open_artifact

    started = time.perf_counter()
    session = open_artifact(path, threads=threads)
    load_s = time.perf_counter() - started
    shape = [1, 3, 224, 224] if session.inputs[0].shape[1] == 3 else [1, 224, 224, 3]
    x = [np.random.default_rng(1).standard_normal(shape).astype(np.float32)]
    for _ in range(10):
        session.run(x)
    times: list[float] = []
    begin = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - begin < min_seconds:
        t0 = time.perf_counter()
        session.run(x)
        times.append((time.perf_counter() - t0) * 1e3)
    return {"runtime": session.name, "version": session.version, "load_s": round(load_s, 3),
            "count": len(times), "median_ms": float(np.median(times)),
            "p90_ms": float(np.percentile(times, 90)), "min_ms": min(times)}


def benchmark_app(xml: Path, threads: int, seconds: int) -> dict[str, Any]:
    import re

    # The console script calls openvino.tools.benchmark.main.main(); the module has no
    # __main__ guard, so `python -m` would exit 0 having done nothing.
    launcher = "import sys; from openvino.tools.benchmark.main import main; sys.exit(main())"
    command = [sys.executable, "-c", launcher] + [
        "-m", str(xml), "-d", "CPU", "-hint", "none", "-api", "sync", "-nstreams", "1",
        "-nthreads", str(threads), "-t", str(seconds), "-infer_precision", "f32"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    text = done.stdout + done.stderr  # it logs its statistics to stderr
    median = re.search(r"Median:\s+([\d.]+) ms", text)
    if done.returncode or not median:
        return {"error": text[-600:]}
    return {"median_ms": float(median.group(1))}


def cpu_description() -> dict[str, Any]:
    flags, model = set(), platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("", "x86_64"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16")
           if f in flags]
    return {"model": model, "isa": isa, "cores": len(__import__("os").sched_getaffinity(0))}


def run(folder: Path, threads: int, min_runs: int, min_seconds: float, bench_seconds: int,
        json_out: Path | None) -> None:
    index = json.loads((folder / "index.json").read_text())
    dest = Path(tempfile.mkdtemp(prefix="int8-run-"))
    rows, cpu = [], cpu_description()
    print(f"CPU: {cpu['model']}; ISA: {' '.join(cpu['isa'])}; {cpu['cores']} usable cores; "
          f"timing with {threads} threads", flush=True)
    for entry in index["artifacts"]:
        row: dict[str, Any] = {"label": entry["label"], "file": entry["path"]}
        try:
            path = refill(folder, entry, dest)
            row.update(time_artifact(path, threads, min_runs, min_seconds))
            if path.suffix == ".xml":
                row["benchmark_app"] = benchmark_app(path, threads, bench_seconds)
        except Exception as exc:  # a runtime missing on this host: say so, go on
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items()}), flush=True)
    report = {"cpu": cpu, "threads": threads, "model": index["model"], "rows": rows,
              "python": sys.version.split()[0]}
    print_table(report)
    if json_out:
        json_out.write_text(json.dumps(report, indent=1))
    shutil.rmtree(dest, ignore_errors=True)


def print_table(report: dict[str, Any]) -> None:
    floats = {r["label"].split()[0]: r.get("median_ms") for r in report["rows"]
              if "fp32" in r["label"]}
    print(f"\n{report['model']} 1x3x224x224, {report['threads']} threads, "
          f"{report['cpu']['model']} ({' '.join(report['cpu']['isa'])})")
    print(f"{'artifact':<52} {'runtime':<12} {'median ms':>9} {'vs fp32':>8} {'bench_app':>9}")
    for row in report["rows"]:
        if "error" in row:
            print(f"{row['label']:<52} error: {row['error'][:60]}")
            continue
        base = floats.get(row["label"].split()[0])
        ratio = f"{base / row['median_ms']:.2f}x" if base else ""
        bench = row.get("benchmark_app", {}).get("median_ms", "")
        print(f"{row['label']:<52} {row['runtime']:<12} {row['median_ms']:>9.2f} {ratio:>8} "
              f"{bench:>9}")
    timed = [r for r in report["rows"] if "median_ms" in r]
    if timed:
        best, worst = (f(timed, key=lambda r: r["median_ms"]) for f in (min, max))
        print(f"fastest: {best['label']} ({best['runtime']}) at {best['median_ms']:.2f} ms, "
              f"{worst['median_ms'] / best['median_ms']:.1f}x faster than the slowest row")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--model", default="resnet18")
    p.add_argument("--calib", type=int, default=32)
    r = sub.add_parser("run")
    r.add_argument("folder", type=Path)
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--min-runs", type=int, default=50)
    r.add_argument("--min-seconds", type=float, default=5.0)
    r.add_argument("--bench-seconds", type=int, default=10)
    r.add_argument("--json-out", type=Path)
    show = sub.add_parser("show", help="print the table of a JSON that `run` wrote")
    show.add_argument("json", type=Path)
    args = parser.parse_args()
    if args.verb == "show":
        print_table(json.loads(args.json.read_text()))
    elif args.verb == "pack":
        pack(args.out, args.model, args.calib)
    else:
        run(args.folder, args.threads, args.min_runs, args.min_seconds, args.bench_seconds,
            args.json_out)


if __name__ == "__main__":
    main()
