"""Progress of the long steps (edgepipe.progress), -q/-v, and the backends' native log lines
kept off stderr."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from edgepipe.progress import ProgressEvent, report, reporting

ESCAPE = "\x1b["


def _by_step(events: list[ProgressEvent]) -> dict[str, list[ProgressEvent]]:
    steps: dict[str, list[ProgressEvent]] = {}
    for event in events:
        steps.setdefault(event.step, []).append(event)
    return steps


def _determinate(events: list[ProgressEvent]) -> None:
    """One total for the step, done counting up to it."""
    assert len({e.total for e in events}) == 1 and events[0].total >= 1, events
    assert events[-1].done == events[-1].total, events
    assert all(0 <= e.done <= e.total for e in events), events


def test_nothing_is_reported_without_a_listener():
    report("step", 1, 2)  # no listener: nothing happens, nothing fails
    seen: list[ProgressEvent] = []
    with reporting(seen.append):
        report("step", 1, 2, "batch 1/2")
        with reporting(None):  # an inner verb without its own callback: the outer one hears
            report("inner", 1, 1)
    report("after", 1, 1)
    assert [(e.step, e.done, e.total, e.figure) for e in seen] == [
        ("step", 1, 2, "batch 1/2"), ("inner", 1, 1, "")]


def test_a_profile_reports_its_time_against_the_time_it_takes(digits_artifacts):
    from edgepipe.profiling.profile import profile, settings_for

    settings = settings_for(runs=5, duration=1.0, warmup=1, threads=1, cpus=None,
                            per_layer=False, energy=False, energy_window=1.0,
                            precision="fp32")
    seen: list[ProgressEvent] = []
    with reporting(seen.append):
        profile(digits_artifacts / "digits-cnn.onnx", "host", settings)
        profile(digits_artifacts / "digits-cnn.onnx", "rpi5", settings)  # estimated: instant
    steps = _by_step(seen)
    assert set(steps) == {"profile on host"}
    _determinate(steps["profile on host"])
    assert "s of about 2 s" in steps["profile on host"][0].figure


def test_export_reports_formats_and_parity_checks(tmp_path, digits_mlp):
    from edgepipe.export import ExportConfig, export_model

    loaded, _ = digits_mlp
    seen: list[ProgressEvent] = []
    export_model(loaded, tmp_path, ExportConfig(formats=("onnx",)), progress=seen.append)
    steps = _by_step(seen)
    _determinate(steps["export"])
    assert steps["export"][0].total == 1 and "onnx" in steps["export"][0].figure
    _determinate(steps["parity check (onnx)"])


def test_compress_reports_formats_calibration_and_epochs(tmp_path, digits_mlp):
    from edgepipe.compress import compress, make_config
    from edgepipe.compress.budget import AccuracyBudget

    loaded, splits = digits_mlp
    seen: list[ProgressEvent] = []
    compress(loaded, make_config("int8", formats=("onnx",)), tmp_path / "int8", splits,
             budget=AccuracyBudget(None, True), progress=seen.append)
    steps = _by_step(seen)
    _determinate(steps["compress int8"])
    calibration = steps["calibration (onnx)"]
    _determinate(calibration)
    assert calibration[-1].figure == f"batch {calibration[-1].total}/{calibration[-1].total}"
    _determinate(steps["export"])  # the float model's export, inside compress
    _determinate(steps["sensitivity"])  # one layer at a time, with its drop
    assert "drop" in steps["sensitivity"][-1].figure

    seen.clear()
    compress(loaded, make_config("w4a8", qat=True, epochs=2, calib_size=64, formats=("onnx",)),
             tmp_path / "qat", splits, progress=seen.append)
    epochs = _by_step(seen)["w4a8 training"]
    _determinate(epochs)
    assert epochs[-1].total == 2
    assert any(e.figure.startswith("epoch 1/2 top-1 0.") for e in epochs), epochs


def test_split_training_reports_epochs_with_their_score(digits_cnn):
    """split_model's training (the export and measurement after it are left out)."""
    from edgepipe.split.api import SplitConfig, build_split
    from edgepipe.split.train import SplitTraining, train_split

    loaded, splits = digits_cnn
    parts = build_split(loaded, SplitConfig(at="pool1", bottleneck=2))
    x = next(iter(splits.train.inputs.values()))[:300]
    seen: list[ProgressEvent] = []
    with reporting(seen.append):
        train_split(parts.module, parts.original_head, parts.head, parts.bottleneck, parts.tail,
                    x, splits.train.labels[:300],
                    SplitTraining(distill_epochs=2, finetune_epochs=2, patience=5))
    steps = _by_step(seen)
    for stage, metric in (("split: head distillation", "MSE"), ("split: fine-tuning", "top-1")):
        _determinate(steps[stage])
        assert steps[stage][0].total == 2
        assert any(e.figure.startswith(f"epoch 2/2 {metric} ") for e in steps[stage])


def test_split_model_passes_its_callback(tmp_path):
    from edgepipe.errors import InputError
    from edgepipe.split.api import SplitConfig, split_model

    seen: list[ProgressEvent] = []
    with pytest.raises(InputError):  # no data: refused before any work, nothing reported
        split_model("builtin:digits-cnn", SplitConfig(at="pool1", bottleneck=2), None,
                    tmp_path, progress=seen.append)
    assert seen == []


def test_bars_are_drawn_on_a_terminal_only(monkeypatch):
    from edgepipe.cli import common

    terminal = io.StringIO()
    monkeypatch.setattr(common, "stderr", Console(file=terminal, force_terminal=True,
                                                  width=100))
    with common.progress_bars() as progress:
        assert progress is not None
        progress(ProgressEvent("compress int8", 1, 3, "tflite (2 of 3)"))
    assert "1/3" in terminal.getvalue() and "tflite (2 of 3)" in terminal.getvalue()
    monkeypatch.setattr(common.state, "quiet", True)
    with common.progress_bars() as progress:
        assert progress is None  # -q: no bars
    monkeypatch.setattr(common.state, "quiet", False)
    monkeypatch.setattr(common, "stderr", Console(file=io.StringIO()))
    with common.progress_bars() as progress:
        assert progress is None  # not a terminal: no bars


@pytest.mark.parametrize("flag", ["-q", "--quiet", "-v", "--verbose"])
@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_and_verbose_are_global(cli, flag, where):
    args = ["inspect", "builtin:digits-mlp"]
    result = cli(*([flag, *args] if where == "before" else [*args, flag]))
    assert result.code == 0, result
    assert "digits" in result.stdout or "Linear" in result.stdout


def test_quiet_and_verbose_exclude_each_other(cli):
    assert cli("-q", "inspect", "builtin:digits-mlp", "-v").code == 2


def test_help_documents_the_global_options(cli):
    result = cli("--help")
    assert "--quiet" in result.stdout and "--verbose" in result.stdout
    assert "before the command" in result.stdout


def test_quiet_leaves_results_and_errors(cli, tmp_path):
    made = cli("export", "builtin:digits-mlp", "-o", tmp_path / "a", "-q")
    assert made.code == 0 and made.stderr == "", made
    assert "digits-mlp.onnx" in made.stdout
    failed = cli("-q", "inspect", tmp_path / "missing.onnx")
    assert failed.code == 1 and "error: model-not-found" in failed.stderr


def test_no_escape_codes_off_a_terminal(cli, tmp_path):
    result = cli("compress", "builtin:digits-mlp", "--data", "builtin:digits", "--method",
                 "int8", "-f", "onnx", "-o", tmp_path)
    assert result.code == 0, result
    assert ESCAPE not in result.stderr and ESCAPE not in result.stdout


def test_native_chatter_is_dropped_and_the_rest_kept(monkeypatch, capfd):
    from edgepipe import native_logs

    monkeypatch.setattr(native_logs, "_active", True)
    chatter = ("WARNING: All log messages before absl::InitializeLog() is called are written "
               "to STDERR\nI0000 00:00:1796607529.296537   30898 port.cc:153] oneDNN custom "
               "operations are on.\nINFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    with native_logs.native_stderr("test"):
        os.write(2, (chatter + "E0000 00:00:1.0  1 x.cc:1] a real error\n").encode())
    err = capfd.readouterr().err
    assert "a real error" in err and "XNNPACK" not in err and "oneDNN" not in err
    with pytest.raises(RuntimeError), native_logs.native_stderr("test"):
        os.write(2, chatter.encode())
        raise RuntimeError("the call failed")
    assert "XNNPACK" in capfd.readouterr().err  # a failure keeps everything it wrote


def test_export_to_tflite_and_openvino_leaks_no_native_lines(tmp_path):
    """As a user runs it: a fresh process, whose backends write to fd 2 on import."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    for name in ("TF_CPP_MIN_LOG_LEVEL", "GLOG_minloglevel"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-m", "edgepipe", "export", "builtin:digits-mlp",
                           "-f", "tflite", "-f", "openvino", "-o", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    for noise in ("absl", "XNNPACK", "oneDNN", "port.cc", ESCAPE):
        assert noise not in proc.stderr, proc.stderr
    assert "digits-mlp.tflite" in proc.stdout
