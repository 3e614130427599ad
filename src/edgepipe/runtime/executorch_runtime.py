"""``.pte`` files on ExecuTorch's Python runtime (``executorch.runtime``), method ``forward``.

The program is loaded with ExecuTorch's InternalConsistency verification (its flatbuffer
verifier), after edgepipe's own check of the file (:func:`edgepipe.model.files.check_pte_file`).

Threads: ExecuTorch's Python bindings share one process-wide threadpool, used by the XNNPACK
delegate; it is resized to the session's threads (``_unsafe_reset_threadpool``, marked
experimental by ExecuTorch). The portable kernels run on the calling thread only.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.native_logs import native_stderr
from edgepipe.runtime.base import Session, default_threads
from edgepipe.tensors import TensorSpec

METHOD = "forward"

# ExecuTorch's ScalarType names (MethodMeta's TensorInfo) -> numpy dtypes
_DTYPES = {"Float": "float32", "Double": "float64", "Half": "float16", "Long": "int64",
           "Int": "int32", "Short": "int16", "Char": "int8", "Byte": "uint8", "Bool": "bool"}
# the runtime's tensor metadata gives the dtype as c10's ScalarType number
_SCALAR_TYPES = {0: "Byte", 1: "Char", 2: "Short", 3: "Int", 4: "Long", 5: "Half", 6: "Float",
                 7: "Double", 11: "Bool"}


class ExecuTorchSession(Session):
    """A ``.pte`` program's ``forward`` method run on numpy arrays."""

    name = "executorch"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
        import torch
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime, Verification

        self.version = _dist_version()
        self._torch = torch
        wanted = threads or default_threads()
        with native_stderr("ExecuTorch"):  # cpuinfo's probing lines
            portable_lib._unsafe_reset_threadpool(wanted)
            program = Runtime.get().load_program(
                Path(path), verification=Verification.InternalConsistency)
            method = program.load_method(METHOD)
        if method is None:
            raise ValueError(f"the program has no method {METHOD!r} "
                             f"(it has {', '.join(sorted(program.method_names)) or 'none'})")
        self._method = method
        meta = method.metadata
        bounded = _bounded_inputs(Path(path))
        inputs = [_spec(f"input_{i}" if i else "input", meta.input_tensor_meta(i),
                        bounded=i in bounded) for i in range(meta.num_inputs())]
        outputs = [_spec(f"output_{i}" if i else "output", meta.output_tensor_meta(i))
                   for i in range(meta.num_outputs())]
        super().__init__(Path(path), inputs, outputs, {
            "num_threads": portable_lib._threadpool_get_thread_count(),
            "threads_note": "XNNPACK delegates use the threadpool; portable kernels run on "
                            "one thread",
            "method": METHOD, "verification": "InternalConsistency"})

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        tensors = [self._torch.from_numpy(a) for a in arrays]
        with native_stderr("ExecuTorch"):
            outputs = self._method.execute(tensors)
        return [_to_numpy(o) for o in outputs]


def open_session(path: Path, threads: int | None = None, *, spin: bool = True,
                 trust_pickle: bool = False) -> ExecuTorchSession:
    """The opener :mod:`edgepipe.formats` names for .pte files."""
    return ExecuTorchSession(path, threads)


def _bounded_inputs(path: Path) -> set[int]:
    """The positions of the ``forward`` inputs whose shape may shrink at run time
    (``DYNAMIC_BOUND`` in the program: the sizes MethodMeta gives are their upper bounds).
    The runtime's MethodMeta does not say it, the program's flatbuffer does; a program this
    reader cannot parse counts as all-static."""
    try:
        from executorch.exir._serialize._program import deserialize_pte_binary

        pte = deserialize_pte_binary(path.read_bytes())
        program = getattr(pte, "program", pte)
        plan = next(p for p in program.execution_plan if p.name == METHOD)
        return {i for i, value in enumerate(plan.inputs)
                if int(getattr(plan.values[value].val, "shape_dynamism", 0) or 0) != 0}
    except Exception:  # an older or newer schema: the sizes are taken as fixed
        logging.getLogger("edgepipe").debug("shape dynamism of %s not read", path,
                                            exc_info=True)
        return set()


def _spec(name: str, info: Any, *, bounded: bool = False) -> TensorSpec:
    """The input or output's spec. A bounded input's dimensions after the first are
    dynamic (``dimN``; their sizes are the bounds): edgepipe's .pte exports keep the batch
    fixed and make only a text encoder's sequence dynamic."""
    raw = info.dtype()
    named = _SCALAR_TYPES.get(raw, "") if isinstance(raw, int) else str(raw).rsplit(".", 1)[-1]
    if named not in _DTYPES:
        raise ValueError(f"the program's tensor {name} has dtype {raw!r}, which edgepipe "
                         "does not map to numpy")
    dtype = _DTYPES[named]
    sizes = [int(d) for d in info.sizes()]
    return TensorSpec(name, tuple(f"dim{i}" if bounded and i and d > 1 else d
                                  for i, d in enumerate(sizes)), dtype)


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy().copy()
    return np.asarray(value)


def _dist_version() -> str:
    try:
        return version("executorch")
    except PackageNotFoundError:
        return ""
