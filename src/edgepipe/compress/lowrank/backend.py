"""Backend of ``--method lowrank`` for every format: factorize the torch model, check each
layer's speed, optionally fine-tune, then export the factorized model like any float model.

Candidates: Linear and 1x1 Conv2d (truncated SVD into two layers, activation-aware by
default) and kxk Conv2d with one group (Tucker-2). Depthwise / grouped convolutions and
other layers stay whole, each with the reason. Ranks come from
:mod:`edgepipe.compress.lowrank.ranks`; each factorized layer is then timed against the
original in ONNX Runtime (:mod:`edgepipe.compress.lowrank.latency`) and kept whole when it
is not faster. The result is a float model: it is exported through the export layer (and
parity-checked there) into ``job.fmt``.
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from edgepipe.compress.base import Compressed, CompressJob, torch_module
from edgepipe.compress.distill import fine_tune
from edgepipe.compress.folding import folded
from edgepipe.compress.lowrank.config import LowRankConfig
from edgepipe.compress.lowrank.layers import count_macs, factorized_module, find_candidates
from edgepipe.compress.lowrank.ranks import select_ranks
from edgepipe.errors import InputError, UnsupportedError
from edgepipe.export.base import log


def compress(job: CompressJob) -> Compressed:
    """Write ``job.path`` in ``job.fmt``: the factorized model, exported and parity-checked."""
    config = job.config
    assert isinstance(config, LowRankConfig)
    module = _check_job(job, config)
    torch.manual_seed(config.seed)
    original, folding = folded(module)
    assert job.data is not None
    calib = job.data.calib.subset(np.arange(min(config.calib_size, len(job.data.calib))))
    arrays = [torch.from_numpy(np.ascontiguousarray(a)) for a in calib.inputs.values()]
    started = time.perf_counter()
    candidates, whole, totals = find_candidates(original, arrays, config.activation_aware)
    if not candidates:
        raise UnsupportedError(
            "The model has no layer low-rank factorization can touch: it needs Linear or "
            "Conv2d layers with one group." + (f" Seen and left whole: "
                                               f"{', '.join(w['layer'] for w in whole)}."
                                               if whole else ""),
            hint="try --method int8 or fp16 for this model.", reference="nothing-to-factorize")
    plans, selection = select_ranks(original, candidates, totals, config, calib, arrays)
    if config.latency_check:
        from edgepipe.compress.lowrank.latency import check_latency

        check_latency(plans, job.threads, config.min_speedup)
    student = copy.deepcopy(original)
    for plan in plans:
        if plan.decision == "factorized":
            student.set_submodule(plan.candidate.name,
                                  factorized_module(plan.candidate, plan.ranks))
    kept = [p for p in plans if p.decision == "factorized"]
    layers = [p.to_dict() for p in plans] + whole
    after = _totals(student, arrays)
    tool: dict[str, Any] = {
        "method": "low-rank factorization (truncated SVD for Linear / 1x1 conv, Tucker-2 "
        "for kxk conv)", "rank_selection": selection, "layers": layers,
        "params": {"before": totals["params"], "after": after["params"],
                   "ratio": round(after["params"] / totals["params"], 4),
                   "counted": "all parameters after batch-norm folding, computed"},
        "macs": {"before": totals["macs"], "after": after["macs"],
                 "ratio": round(after["macs"] / max(1, totals["macs"]), 4),
                 "counted": "convolution and linear layers, one sample, computed"},
        "batchnorm_folding": folding,
        "factorize_seconds": round(time.perf_counter() - started, 3)}
    notes = _notes(plans, config, tool)
    if config.epochs and kept:
        tool["finetune"] = fine_tune(student, original, job, "lowrank", notes, "Fine-tuning",
                                     "trained by distillation from the original model only.")
    files, parity = _export(job, student.eval())
    tool["export_parity"] = parity
    if kept:
        _whole_model_latency(job, files[0], [a[:1].numpy() for a in arrays], tool, notes)
    log.info("lowrank: %d of %d candidate layer(s) factorized; params %d -> %d", len(kept),
             len(plans), totals["params"], after["params"])
    left = [{"layer": w["layer"], "op": w["op"], "reason": w["reason"]}
            for w in whole if w.pop("left", False)]
    return Compressed(files[0], files, "fp32", tool, left, notes)


def _check_job(job: CompressJob, config: LowRankConfig) -> Any:
    module = torch_module(job, "factorizes")
    if job.data is None or not len(job.data.calib):
        raise InputError(
            "--method lowrank needs calibration data (for activation-aware bases, "
            "sensitivity and fine-tuning), and none was given.",
            hint="give --data (a .npz, an image folder or builtin:digits) with samples like "
            "the model's real inputs.", reference="calibration-data-missing")
    if config.epochs and not len(job.data.train):
        raise InputError("Fine-tuning needs training samples; the data's train split is empty.",
                         hint="give more data, or --epochs 0.", reference="training-data-missing")
    return module


def _notes(plans: list[Any], config: LowRankConfig, tool: dict[str, Any]) -> list[str]:
    notes = []
    slower = [p for p in plans if p.decision == "kept whole" and p.latency]
    if slower:
        notes.append(f"{len(slower)} layer(s) kept whole because their factorized form was "
                     f"not faster in ONNX Runtime: {', '.join(p.candidate.name for p in slower)}.")
    if config.rank_selection == "ratio" and config.ratio is not None:
        key = "macs" if config.target == "macs" else "params"
        got = tool[key]["ratio"]
        if got > config.ratio + 1e-6:
            notes.append(f"--ratio {config.ratio:g} of {key} not reached: {got:.3f} (layers "
                         "that cannot be factorized, or are not faster factorized, hold the "
                         "rest).")
    return notes


def _whole_model_latency(job: CompressJob, path: Any, sample: list[np.ndarray],
                         tool: dict[str, Any], notes: list[str]) -> None:
    """The float and factorized artifacts timed against each other in their runtime: layers
    faster alone can still make a slower model (the runtime fuses and lays out the graph)."""
    from edgepipe.compress.lowrank.latency import time_artifacts

    float_ms, factorized_ms = time_artifacts([job.float_path, path], sample, job.threads)
    tool["model_latency"] = {"float_ms": round(float_ms, 5),
                             "factorized_ms": round(factorized_ms, 5),
                             "speedup": round(float_ms / factorized_ms, 3), "batch": 1,
                             "label": "measured", "runtime": job.fmt}
    if factorized_ms > float_ms:
        notes.append(f"The factorized model is slower than the float one as a whole in its "
                     f"runtime ({factorized_ms:.3f} ms vs {float_ms:.3f} ms at batch 1), though "
                     "each factorized layer was faster alone; it is smaller, not faster.")


def _totals(model: nn.Module, arrays: list[torch.Tensor]) -> dict[str, int]:
    return {"params": sum(p.numel() for p in model.parameters()),
            "macs": count_macs(model, [a[:1] for a in arrays])}


def _export(job: CompressJob, student: nn.Module) -> tuple[list[Any], dict[str, Any]]:
    """Export ``student`` to ``job.fmt`` through the export layer; files renamed to job.path."""
    from edgepipe.export import ExportConfig, export_model

    work = job.path.parent / f".{job.path.stem}.export"
    loaded = dataclasses.replace(job.source, module=student)
    result = export_model(loaded, work, ExportConfig(formats=(job.fmt,), seed=job.config.seed,
                                                     threads=job.threads))
    record = result.artifacts[0]
    files = []
    main_suffix = job.path.suffix
    for name in record["files"]:
        source = work / name
        target = job.path if source.suffix == main_suffix else job.path.with_suffix(source.suffix)
        shutil.move(str(source), target)
        files.append(target)
    shutil.rmtree(work, ignore_errors=True)
    files.sort(key=lambda f: f.suffix != main_suffix)
    return files, record.get("parity", {})
