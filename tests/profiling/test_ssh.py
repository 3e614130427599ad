"""Profiling through a real OpenSSH server on 127.0.0.1 (started by the tests)."""

from __future__ import annotations

import glob
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

import sshd_server as sshd
from edgepipe.errors import EdgepipeError, InputError, TargetError
from edgepipe.profiling.profile import profile_artifact
from edgepipe.profiling.runner import LatencySettings
from edgepipe.profiling.runners.ssh import SshHost, parse_host

QUICK = LatencySettings(runs=50, duration_s=0.3, warmup_runs=5, threads=1, per_layer=False,
                        energy=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    reason = sshd.available()
    if reason:
        pytest.skip(reason)
    server = sshd.start(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


def host_of(server, **options) -> SshHost:
    return parse_host(server.url, config=server.client_config, **options)


def remote_folders() -> set[str]:
    return set(glob.glob("/tmp/edgepipe-??????"))


def test_profile_over_ssh_matches_a_local_run(server, digits_artifacts):
    before = remote_folders()
    artifact = digits_artifacts / "digits-cnn.onnx"
    remote = profile_artifact(artifact, "host", QUICK, host=host_of(server),
                     remote_python=sys.executable).to_dict()
    local = profile_artifact(artifact, "host", QUICK).to_dict()
    assert remote["mode"] == "measured" and remote["device"]["via"] == "ssh"
    assert remote["device"]["destination"] == server.alias
    steady = remote["latency"]["steady"]
    assert steady["count"] >= 50 and len(steady["raw_s"]) == steady["count"]
    assert remote["runtime"]["version"] == local["runtime"]["version"]
    assert remote["inputs"] == local["inputs"]
    assert remote["identity"]["hostname"] == local["identity"]["hostname"]
    # Same machine, same runtime and threads: the medians agree within a shared machine's noise.
    ratio = steady["p50_s"] / local["latency"]["steady"]["p50_s"]
    assert 1 / 3 < ratio < 3
    assert remote["memory"]["peak_rss_bytes"]["value"] > 0
    assert remote_folders() == before  # the device's folder was removed


def test_openvino_ir_travels_with_its_weights(server, digits_artifacts):
    doc = profile_artifact(digits_artifacts / "digits-cnn.xml", "host", QUICK, host=host_of(server),
                  remote_python=sys.executable).to_dict()
    assert doc["runtime"]["name"] == "openvino" and doc["latency"]["steady"]["count"] >= 50


def test_a_pte_profiles_over_ssh_with_its_operators(server, tmp_path):
    """ExecuTorch's runner on the device: latency and the ETDump per-operator times."""
    pytest.importorskip("executorch", reason="the executorch extra is not installed")
    from dataclasses import replace

    from edgepipe.export.api import export_model

    export_model("builtin:digits-cnn", tmp_path, formats=("executorch",))
    before = remote_folders()
    doc = profile_artifact(tmp_path / "digits-cnn.pte", "host", replace(QUICK, per_layer=True),
                           host=host_of(server), remote_python=sys.executable).to_dict()
    assert doc["runtime"]["name"] == "executorch" and doc["device"]["via"] == "ssh"
    assert doc["latency"]["steady"]["count"] >= 50
    rows = doc["layers"]["rows"]
    assert rows and {row["exec_type"] for row in rows} == {"XNNPACK"}, doc["layers"]
    assert remote_folders() == before


def test_missing_python_and_numpy(server, digits_artifacts, tmp_path):
    artifact = digits_artifacts / "digits-cnn.onnx"
    with pytest.raises(TargetError) as missing:
        profile_artifact(artifact, "host", QUICK, host=host_of(server),
                remote_python="/nonexistent/bin/python3")
    assert missing.value.reference == "remote-python-missing"
    assert "--remote-python" in missing.value.hint
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    with pytest.raises(EdgepipeError) as no_numpy:
        profile_artifact(artifact, "host", QUICK, host=host_of(server),
                remote_python=str(bare / "bin" / "python"))
    assert no_numpy.value.reference == "numpy-missing"


def test_unreachable_and_unknown_host_key(server, digits_artifacts):
    artifact = digits_artifacts / "digits-cnn.onnx"
    closed = sshd.free_port()
    with pytest.raises(TargetError) as unreachable:
        profile_artifact(artifact, "host", QUICK, host=parse_host(
            f"ssh://127.0.0.1:{closed}", options=("StrictHostKeyChecking=yes",)))
    assert unreachable.value.reference == "unreachable"
    strict = host_of(server, options=("UserKnownHostsFile=/dev/null",
                                      "StrictHostKeyChecking=yes"))
    with pytest.raises(TargetError) as key:
        profile_artifact(artifact, "host", QUICK, host=strict)
    assert key.value.reference == "host-key" and "known_hosts" in key.value.hint
    with pytest.raises(InputError):
        parse_host("user@host")


def test_a_key_the_device_does_not_know(server, digits_artifacts, tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    str(tmp_path / "stranger")], check=True)
    stranger = parse_host(f"ssh://root@127.0.0.1:{server.port}", identity=tmp_path / "stranger",
                          options=(f"UserKnownHostsFile={server.folder / 'known_hosts'}",
                                   "IdentitiesOnly=yes", "StrictHostKeyChecking=yes"))
    with pytest.raises(TargetError) as refused:
        profile_artifact(digits_artifacts / "digits-cnn.onnx", "host", QUICK, host=stranger)
    assert refused.value.reference == "ssh-auth" and "--identity" in refused.value.hint


def test_connection_killed_mid_run(server, digits_artifacts):
    before = remote_folders()
    long_run = LatencySettings(runs=10, duration_s=30, threads=1, per_layer=False,
                               energy=False)
    outcome: dict = {}

    def run() -> None:
        try:
            profile_artifact(digits_artifacts / "digits-cnn.onnx", "host", long_run,
                    host=host_of(server), remote_python=sys.executable)
        except EdgepipeError as error:
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    listener = psutil.Process(server.process.pid)
    deadline = time.monotonic() + 60
    agent_seen = False
    while time.monotonic() < deadline and not agent_seen:
        time.sleep(0.5)
        agent_seen = any("agent.py" in " ".join(_cmdline(p))
                         for p in listener.children(recursive=True))
    assert agent_seen, "the agent never started on the device"
    time.sleep(2)  # past loading and the first inference
    for child in listener.children(recursive=False):  # the connection's sshd processes
        child.kill()
    thread.join(timeout=60)
    error = outcome.get("error")
    assert isinstance(error, TargetError) and error.reference == "connection-lost", outcome
    phases = [p["phase"] for p in error.details["partial"]]
    assert "loaded" in phases and "first-inference" in phases
    assert remote_folders() == before
    # The agent read end-of-file on its stdin when the connection died, and stopped.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and agents():
        time.sleep(0.2)
    assert not agents()


def _cmdline(process: psutil.Process) -> list[str]:
    """A process's command line; empty for one that has exited (a zombie until reaped)."""
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def agents() -> list:
    return [p for p in psutil.process_iter(["cmdline"])
            if "agent.py" in " ".join(p.info["cmdline"] or []) and
            "--exit-on-eof" in " ".join(p.info["cmdline"] or [])]


def test_ctrl_c_cleans_up_the_device(server, digits_artifacts):
    before = remote_folders()
    command = [sys.executable, "-m", "edgepipe", "profile",
               str(digits_artifacts / "digits-cnn.onnx"), "--remote", server.url,
               "--ssh-config", str(server.client_config), "--remote-python", sys.executable,
               "--duration", "30", "--no-per-layer", "--no-energy"]
    started = time.time()
    # Ctrl-C as a terminal delivers it: to a process whose SIGINT is not ignored (a signal
    # ignored by whoever started pytest, or by an earlier test, would be inherited)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                                           signal.SIG_DFL))

    def ours() -> list:  # this run's agent, not one an earlier test left behind
        found = []
        for agent in agents():
            try:
                if agent.create_time() >= started - 1:
                    found.append(agent)
            except psutil.Error:  # exited meanwhile
                pass
        return found

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not ours():
        time.sleep(0.5)
    assert ours(), process.communicate(timeout=30)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert remote_folders() == before
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and agents():
        time.sleep(0.2)
    assert not agents()


def test_room_on_the_device_is_checked_before_copying(tmp_path):
    from edgepipe.profiling.runners.ssh import check_room

    artifact = tmp_path / "model.onnx"
    artifact.write_bytes(b"\0" * 4096)
    host = parse_host("ssh://pi@raspberrypi")
    roomy = "/tmp/edgepipe-abc123\n/dev/root 30000000 1000 29999000 1% /tmp\nMemAvailable: 7000000 kB\n"
    check_room(roomy, [artifact], host)
    full = "/tmp/edgepipe-abc123\n/dev/root 30000000 29999999 1 100% /tmp\nMemAvailable: 7000000 kB\n"
    with pytest.raises(TargetError) as disk:
        check_room(full, [artifact], host)
    assert disk.value.reference == "device-disk-full"
    tight = "/tmp/edgepipe-abc123\n/dev/root 30000000 1000 29999000 1% /tmp\nMemAvailable: 2 kB\n"
    with pytest.raises(TargetError) as memory:
        check_room(tight, [artifact], host)
    assert memory.value.reference == "device-memory-too-small"
