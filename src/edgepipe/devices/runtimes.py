"""Which artifact formats a catalog target can run, read from its ``runtimes`` list.

A target's ``runtimes`` are free text (``onnxruntime (QNN EP)``, ``tflite-micro (with ESP-NN
kernels)``): the first word of each is the runtime. A format runs there when its registry
runtime (:mod:`edgepipe.formats`) is one of them; TFLite Micro runs the same flatbuffers as
LiteRT, so a microcontroller runs ``.tflite`` files and nothing else.
"""

from __future__ import annotations

from edgepipe import formats
from edgepipe.devices.schema import DeviceEntry
from edgepipe.errors import TargetError

# a device runtime that reads the files of a registry runtime
READS_FILES_OF = {"tflite-micro": "litert"}


def target_runtimes(entry: DeviceEntry) -> tuple[str, ...]:
    """The runtimes of ``entry``, as registry runtime names (``tflite-micro`` -> ``litert``)."""
    names = (text.split()[0].lower() for text in entry.runtimes if text.strip())
    return tuple(READS_FILES_OF.get(name, name) for name in names)


def runnable_formats(entry: DeviceEntry) -> tuple[formats.Format, ...]:
    """The registry formats whose runtime ``entry`` lists."""
    runtimes = set(target_runtimes(entry))
    return tuple(f for f in formats.all_formats() if f.runtime in runtimes)


def check_runs_there(entry: DeviceEntry, runtime: str, artifact: str) -> None:
    """Raise ``format-not-on-target`` when ``entry`` has no runtime for an artifact that
    ``runtime`` (a registry runtime name) opens."""
    if runtime in target_runtimes(entry):
        return
    able = runnable_formats(entry)
    fmt = next((f for f in formats.all_formats() if f.runtime == runtime), None)
    what = f"{fmt.label} (run by {fmt.runtime_label})" if fmt else f"run by {runtime}"
    can = ", ".join(f"{f.label} ({f.suffix})" for f in able) or "none of edgepipe's formats"
    listed = ", ".join(entry.runtimes) or "none"
    raise TargetError(
        f"Cannot run this format there: {artifact} is {what}, and {entry.name} runs only "
        f"{listed}; an estimate would describe a deployment that cannot exist.",
        hint=f"{entry.name} runs {can}: export or compress to that format "
        "(e.g. `edgepipe compress MODEL --method int8 --format "
        f"{able[0].name if able else 'tflite'}`), or pick another target.",
        reference="format-not-on-target",
        details={"target": entry.name, "runtime": runtime,
                 "formats": [f.name for f in able]})
