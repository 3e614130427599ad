"""Interruptions and leftovers: SIGTERM unwinds like Ctrl-C (exit 143, staging removed), a
run removes what a killed edgepipe left in its OUT, and a manifest that cannot be used is
refused before any work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

CNN = "builtin:digits-cnn"


def _hidden(out):
    return sorted(p.name for p in out.iterdir() if p.name.startswith(".")
                  and p.name != ".manifest.lock")


def test_sigterm_mid_export_exits_143_and_leaves_nothing_half_written(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "edgepipe", "export", CNN, "-f", "onnx", "-f", "tflite",
               "-o", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 240
        while not (out.is_dir() and any(p.name.startswith(".staging-") for p in out.iterdir())):
            assert process.poll() is None, process.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the export never started staging"
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, err[-2000:]
    assert "terminated" in err and "Traceback" not in err
    assert _hidden(out) == []
    assert not any(p.suffix == ".failed" for p in out.iterdir())


def test_a_run_removes_the_staging_a_killed_run_left_but_not_a_live_ones(cli, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    (out / f".staging-{dead_pid}-abcd1234").mkdir()
    (out / f".staging-{dead_pid}-abcd1234" / "model.onnx").write_bytes(b"complete-looking")
    (out / f".model.onnx.{dead_pid}-zz9_8765.partial").write_bytes(b"half")
    live = out / f".staging-{os.getpid()}-live1234"  # this test process is alive
    live.mkdir()
    legacy = out / ".staging-old12345"  # an older edgepipe's name, no pid: an hour old
    legacy.mkdir()
    os.utime(legacy, (time.time() - 7200, time.time() - 7200))
    result = cli("export", CNN, "-f", "onnx", "-o", out)
    assert result.code == 0, result
    assert _hidden(out) == [live.name]


@pytest.mark.parametrize("content, words", [
    (b"{\"artifacts\": [", "not valid JSON"),
    (b"\xff\xfe\x00binary", "not valid JSON"),
    (b"[1, 2, 3]", "not an edgepipe manifest"),
    (b"{\"schema_version\": 99, \"artifacts\": [], \"steps\": []}", "newer edgepipe"),
    (b"{\"schema_version\": \"one\"}", "not a number"),
], ids=["truncated", "binary", "a-list", "too-new", "bad-version"])
def test_a_manifest_that_cannot_be_used_is_refused_before_any_work(cli, tmp_path, content,
                                                                    words):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_bytes(content)
    result = cli("export", CNN, "-f", "onnx", "-o", out)
    assert result.code == 1, result
    assert "error: manifest-" in result.stderr and "hint:" in result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]  # nothing was made
    assert (out / "manifest.json").read_bytes() == content


def test_an_edgepipe_manifest_still_opens(tmp_path):
    from edgepipe.rundir import RunDir

    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"schema_version": 1, "artifacts": [],
                                                   "steps": []}))
    assert RunDir(out).read_manifest().artifacts == []



@pytest.mark.parametrize("handler, signum, code, said", [
    ("_terminate", signal.SIGTERM, 143, "terminated"),
    ("_ctrl_c", signal.SIGINT, 130, "interrupted")])
def test_a_signal_python_swallowed_still_ends_the_run_without_a_traceback(
        monkeypatch, capsys, handler, signum, code, said):
    """A signal that lands in a garbage-collector callback raises where Python cannot
    propagate it (it prints "Exception ignored in ..."): the run still says it was
    interrupted, with its exit status, and no traceback."""
    import gc

    from edgepipe.cli import main

    class Collected:
        def __del__(self):
            getattr(main, handler)(signum, None)

    def command(args):
        Collected()
        gc.collect()
        return 0

    monkeypatch.setattr(main, "_run_app", command)
    assert main._dispatch(["export"]) == code
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err and "Exception ignored" not in err
