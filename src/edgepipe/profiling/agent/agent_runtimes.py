"""The agent's runtimes: open an artifact, bind inputs once, invoke in a lean loop.

Shipped with ``agent.py`` to devices, so it imports nothing from edgepipe and each runtime
only when asked for. ``invoke`` is the cheapest call each runtime offers on inputs already
bound: ONNX Runtime's ``run`` on a prepared feed, OpenVINO's ``InferRequest.infer`` on
preset tensors (its own per-request latency is recorded too: it is the clock OpenVINO's
``benchmark_app`` reports), LiteRT's ``invoke`` on tensors already set, torch's module call
under ``inference_mode``, ExecuTorch's ``Method.execute`` on tensors made once. Per-layer timings come from ONNX Runtime's profiler and
OpenVINO's performance counters, in a separate session so they do not slow the main loop.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

INSTALL = {"onnxruntime": "pip install onnxruntime", "openvino": "pip install openvino",
           "litert": "pip install ai-edge-litert", "torch": "pip install torch",
           "executorch": "pip install executorch"}


def backend(name: str, error, device: str = "cpu", precision: str = "fp32"):
    """The backend called ``name`` on ``device`` (``cpu`` or ``cuda``); a runtime or device
    this machine lacks is an ``error`` saying so. ``precision`` fp16 casts a torch program."""
    classes = {"onnxruntime": OnnxRuntime, "openvino": OpenVINO, "litert": LiteRT,
               "torch": Torch, "executorch": ExecuTorch}
    if name not in classes:
        raise error(f"The agent has no runtime called {name!r}.",
                    f"one of: {', '.join(classes)}.", "unknown-runtime")
    if device != "cpu" and name not in ("torch", "onnxruntime"):
        raise error(f"{name} runs on the CPU here; {device} needs torch or ONNX Runtime.",
                    "profile a .pt2 (torch) or .onnx artifact on cuda.", "no-device-runtime")
    try:
        found = classes[name]()
    except ImportError as exc:
        raise error(f"{name} is not installed for {sys.executable}: {exc}",
                    f"install it ({INSTALL[name]}) or profile another format.",
                    "runtime-missing") from exc
    found.use(device, precision, error)
    return found


class Runner:
    """An artifact loaded and bound to its inputs."""

    own_latency = None  # a callable giving the runtime's own latency of the last call (s)

    def __init__(self, invoke, bind, options: dict) -> None:
        self.invoke = invoke
        self.bind = bind
        self.options = options


class Backend:
    """What every backend shares: its runtime module (imported when the backend is made,
    as ``self.lib``), its version and where it runs."""

    name = ""
    module = ""
    dist = ""  # the distribution whose version is reported, when the module has none
    own_clock = None
    device = "cpu"
    precision = "fp32"

    def __init__(self) -> None:
        import importlib

        self.lib = importlib.import_module(self.module)

    def version(self) -> str:
        if not self.dist:
            return self.lib.__version__
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version(self.dist)
        except PackageNotFoundError:
            return ""

    def use(self, device: str, precision: str, error) -> None:
        if precision != "fp32" and not isinstance(self, Torch):
            raise error(f"--precision {precision} casts torch programs only.",
                        "export an fp16 artifact instead.", "bad-precision")
        self.device, self.precision = device, precision


class OnnxRuntime(Backend):
    name = "onnxruntime"
    module = "onnxruntime"

    def _session(self, path: str, threads: int, profile_dir: str | None = None):
        options = self.lib.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = self.lib.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = self.lib.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if profile_dir:
            options.enable_profiling = True
            options.profile_file_prefix = os.path.join(profile_dir, "ort")
        providers = ["CPUExecutionProvider"]
        if self.device == "cuda":
            if "CUDAExecutionProvider" not in self.lib.get_available_providers():
                raise ImportError("this onnxruntime has no CUDAExecutionProvider "
                                  "(pip install onnxruntime-gpu), or profile a .pt2 on cuda")
            providers.insert(0, "CUDAExecutionProvider")
        return self.lib.InferenceSession(path, options, providers=providers)

    def open(self, path: str, threads: int) -> Runner:
        session = self._session(path, threads)
        names = [i.name for i in session.get_inputs()]
        state = {}

        def bind(arrays) -> None:
            state["feed"] = dict(zip(names, cast(arrays, session.get_inputs())))

        return Runner(lambda: session.run(None, state["feed"]), bind,
                      {"intra_op_num_threads": threads, "execution_mode": "sequential",
                       "graph_optimization_level": "all", "providers": session.get_providers()})

    def layers(self, path: str, threads: int, arrays, runs: int) -> dict:
        with tempfile.TemporaryDirectory() as folder:
            session = self._session(path, threads, folder)
            feed = dict(zip([i.name for i in session.get_inputs()],
                            cast(arrays, session.get_inputs())))
            for _ in range(runs + 1):
                session.run(None, feed)
            with open(session.end_profiling()) as handle:
                events = json.load(handle)
        runs_seen = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                           if e.get("cat") == "Session" and e.get("name") == "model_run")
        first_end = runs_seen[0][1] if runs_seen else -1
        rows: dict = {}
        for event in events:
            if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
                continue
            if event["ts"] <= first_end:  # the first run allocates and warms up: dropped
                continue
            name = event["name"][: -len("_kernel_time")]
            row = rows.setdefault(name, {"name": name, "op_type": event.get("args", {}).get(
                "op_name", ""), "times_us": []})
            row["times_us"].append(float(event["dur"]))
        return summarize(rows, runs, "onnxruntime profiler (SessionOptions.enable_profiling), "
                         "kernel time per node, first run dropped; profiling slows kernels, so read the shares")


class OpenVINO(Backend):
    name = "openvino"
    module = "openvino"
    own_clock = "InferRequest.latency (OpenVINO's own per-request timer, as benchmark_app)"

    def __init__(self) -> None:
        try:  # decline OpenVINO's opt-out usage telemetry before it asks (see edgepipe)
            from openvino_telemetry.utils import opt_in_checker

            declined = opt_in_checker.ConsentCheckResult.DECLINED
            opt_in_checker.OptInChecker.check = lambda self, *a, **k: declined
        except ImportError:
            pass
        super().__init__()

    def version(self) -> str:
        return self.lib.get_version().split("-")[0]

    def _compiled(self, path: str, threads: int, perf_count: bool = False):
        core = self.lib.Core()
        config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32",
                  "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        if perf_count:
            config["PERF_COUNT"] = True
        return core.compile_model(core.read_model(path), "CPU", config), config

    def open(self, path: str, threads: int) -> Runner:
        from openvino._pyopenvino import InferRequest as Base

        compiled, config = self._compiled(path, threads)
        request = compiled.create_infer_request()

        def bind(arrays) -> None:
            for index, array in enumerate(cast(arrays, None, compiled.inputs)):
                request.set_input_tensor(index, self.lib.Tensor(array))

        # The base class's infer skips the Python wrapper's input dispatch and result dict.
        runner = Runner(lambda: Base.infer(request, {}, True, False), bind,
                        {k.lower(): v for k, v in config.items()})
        runner.own_latency = lambda: request.latency / 1000.0
        return runner

    def layers(self, path: str, threads: int, arrays, runs: int) -> dict:
        compiled, _ = self._compiled(path, threads, perf_count=True)
        request = compiled.create_infer_request()
        for index, array in enumerate(cast(arrays, None, compiled.inputs)):
            request.set_input_tensor(index, self.lib.Tensor(array))
        request.infer()
        rows: dict = {}
        for _ in range(runs):
            request.infer()
            for info in request.profiling_info:
                if str(info.status).endswith("NOT_RUN"):
                    continue
                row = rows.setdefault(info.node_name, {
                    "name": info.node_name, "op_type": info.node_type,
                    "exec_type": info.exec_type, "times_us": []})
                row["times_us"].append(info.real_time.total_seconds() * 1e6)
        return summarize(rows, runs, "OpenVINO performance counters (PERF_COUNT), real time "
                         "per executed node")


class LiteRT(Backend):
    name = "litert"
    module = "ai_edge_litert.interpreter"
    dist = "ai-edge-litert"

    def open(self, path: str, threads: int) -> Runner:
        interpreter = self.lib.Interpreter(model_path=path, num_threads=threads)
        interpreter.allocate_tensors()
        details = interpreter.get_input_details()

        def bind(arrays) -> None:
            for detail, array in zip(details, arrays):
                if tuple(detail["shape"]) != array.shape:
                    interpreter.resize_tensor_input(detail["index"], list(array.shape))
                    interpreter.allocate_tensors()
            for detail, array in zip(details, arrays):
                interpreter.set_tensor(detail["index"], quantize(array, detail))

        return Runner(interpreter.invoke, bind,
                      {"num_threads": threads, "delegate": "xnnpack (default)"})

    def layers(self, path: str, threads: int, arrays, runs: int) -> dict:
        return {"rows": [], "source": None, "note": (
            "ai-edge-litert's Python Interpreter exposes no per-op timings; run "
            "`litert-benchmark` or TFLite's benchmark_model with --enable_op_profiling=true")}


class Torch(Backend):
    name = "torch"
    module = "torch"

    def version(self) -> str:
        return self.lib.__version__.split("+")[0]

    def use(self, device: str, precision: str, error) -> None:
        super().use(device, precision, error)
        if device == "cuda" and not self.lib.cuda.is_available():
            raise error("torch sees no CUDA device here.", "profile on --target host, or on "
                        "a machine with an NVIDIA GPU and a CUDA build of torch.", "no-cuda")

    def open(self, path: str, threads: int) -> Runner:
        torch = self.lib
        torch.set_num_threads(threads)
        module = torch.export.load(path).module().to(self.device)
        dtype = torch.float16 if self.precision == "fp16" else None
        if dtype is not None:
            module = module.to(dtype)
        state = {}
        cuda = self.device == "cuda"

        def bind(arrays) -> None:
            tensors = [torch.from_numpy(a).to(self.device) for a in arrays]
            state["args"] = [t.to(dtype) if dtype is not None and t.is_floating_point() else t
                             for t in tensors]

        def invoke():
            with torch.inference_mode():
                out = module(*state["args"])
            if cuda:  # kernels run asynchronously: the call ends when they have
                torch.cuda.synchronize()
            return out

        options = {"num_threads": threads, "device": self.device, "precision": self.precision}
        if cuda:
            options["gpu"] = torch.cuda.get_device_name(0)
        return Runner(invoke, bind, options)

    def layers(self, path: str, threads: int, arrays, runs: int) -> dict:
        return {"rows": [], "source": None,
                "note": "per-layer timings are not collected for torch programs"}


class ExecuTorch(Backend):
    """A .pte program's ``forward``; the XNNPACK threadpool is resized to the threads
    (the portable kernels run on the calling thread)."""

    name = "executorch"
    module = "executorch.runtime"
    dist = "executorch"

    def open(self, path: str, threads: int) -> Runner:
        import torch
        from executorch.extension.pybindings import portable_lib

        portable_lib._unsafe_reset_threadpool(threads)
        program = self.lib.Runtime.get().load_program(
            path, verification=self.lib.Verification.InternalConsistency)
        method = program.load_method("forward")
        state = {}

        def bind(arrays) -> None:
            state["args"] = [torch.from_numpy(a) for a in arrays]

        return Runner(lambda: method.execute(state["args"]), bind, {
            "num_threads": portable_lib._threadpool_get_thread_count(), "method": "forward",
            "delegate": "as lowered (XNNPACK threadpool; portable kernels on one thread)"})

    def layers(self, path: str, threads: int, arrays, runs: int) -> dict:
        """Per-operator times from the runtime's ETDump: XNNPACK's own per-operator events
        inside a delegate call, and each kernel the portable runtime ran itself."""
        import torch
        from executorch.extension.pybindings import portable_lib

        portable_lib._unsafe_reset_threadpool(threads)
        module = portable_lib._load_for_executorch(path, enable_etdump=True)
        if not module.has_etdump():
            return {"rows": [], "source": None, "note": (
                "this ExecuTorch runtime was built without ETDump; per-operator timings are "
                "not collected")}
        args = tuple(torch.from_numpy(a) for a in arrays)
        for _ in range(runs + 1):
            module.run_method("forward", args)
        from executorch.devtools import Inspector
        from executorch.devtools.inspector._inspector_utils import TimeScale

        with tempfile.TemporaryDirectory() as folder:
            dump = os.path.join(folder, "run.etdp")
            module.write_etdump_result_to_file(dump)
            inspector = Inspector(etdump_path=dump, source_time_scale=TimeScale.NS,
                                  target_time_scale=TimeScale.US)
        rows: dict = {}
        seen: dict[str, int] = {}
        delegate = 1  # XNNPACK numbers its operators per delegate; a delegate's call event
        for event in [e for block in inspector.event_blocks if block.name == "Execute"
                      for e in block.events if e.perf_data is not None]:  # follows its ops
            if event.name == "DELEGATE_CALL":
                delegate += 1
            if event.name in _ET_WRAPPERS:
                continue
            if event.is_delegated_op:
                name = f"delegate {delegate}: {event.name}"
            else:  # a portable kernel has the same name at every call site: numbered
                seen[event.name] = seen.get(event.name, 0) + 1
                name = event.name + (f" #{seen[event.name]}" if seen[event.name] > 1 else "")
            times = list(event.perf_data.raw)[1:]  # the first run warms up: dropped
            delegated = bool(event.is_delegated_op)
            row = rows.setdefault(name, {
                "name": name, "op_type": _et_op(event.name),
                "exec_type": (event.delegate_backend_name or "XNNPACK") if delegated
                else "portable kernel", "times_us": []})
            row["times_us"].extend(float(t) for t in times)
        return summarize(rows, runs, "ExecuTorch ETDump (enable_etdump): XNNPACK's per-operator "
                         "events inside each delegate call, and each portable kernel; first "
                         "run dropped")


# ETDump events that wrap others (the whole method, a whole delegate call), not operators.
_ET_WRAPPERS = {"Method::execute", "DELEGATE_CALL", "OPERATOR_CALL"}


def _et_op(name: str) -> str:
    """``Convolution (NHWC, F32) IGEMM #2`` -> ``Convolution``; ``native_call_add.out`` ->
    ``add.out``."""
    if name.startswith("native_call_"):
        return name[len("native_call_"):]
    return name.split(" (")[0].split(" #")[0]


def summarize(rows: dict, runs: int, source: str) -> dict:
    """Median and mean time per layer over the runs (a preempted run moves the mean, not
    the median), slowest first by median, with its share of the summed medians."""
    out = []
    for row in rows.values():
        times = sorted(row.pop("times_us"))
        row["mean_us"] = sum(times) / max(1, runs)
        row["median_us"] = times[len(times) // 2] if times else 0.0
        row["calls"] = len(times)
        out.append(row)
    total = sum(r["median_us"] for r in out) or 1.0
    for row in out:
        row["share"] = row["median_us"] / total
    out.sort(key=lambda r: -r["median_us"])
    return {"rows": out, "source": source, "runs": runs, "total_us": total}


def cast(arrays, ort_inputs=None, ov_ports=None):
    """Inputs as the dtype each input takes (the request's arrays may be wider)."""
    import numpy as np

    ort_types = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
                 "tensor(int64)": np.int64, "tensor(int32)": np.int32,
                 "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}
    out = []
    for index, array in enumerate(arrays):
        dtype = None
        if ort_inputs is not None:
            dtype = ort_types.get(ort_inputs[index].type)
        elif ov_ports is not None:
            dtype = ov_ports[index].get_element_type().to_dtype()
        out.append(np.ascontiguousarray(array, dtype=dtype) if dtype is not None else array)
    return out


def quantize(array, detail):
    """A float array into an integer input with its scale and zero point (int8 models)."""
    import numpy as np

    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if dtype.kind in "iu" and scale and array.dtype.kind == "f":
        info = np.iinfo(dtype)
        array = np.clip(np.round(array / scale) + zero_point, info.min, info.max)
    return np.ascontiguousarray(array, dtype=dtype)
