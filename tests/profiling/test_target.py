"""A target is resolved once into a Target (catalog entry + runner), and the profile verb
measures through the one Runner protocol, whatever the runner."""

from __future__ import annotations

import pytest

from edgepipe.devices import catalog
from edgepipe.errors import InputError, TargetError
from edgepipe.profiling.profile import Profile, profile, profile_artifact
from edgepipe.profiling.runner import (
    AgentMeasurement,
    EstimatedMeasurement,
    LatencySettings,
    MeasureJob,
    Runner,
    ToolMeasurement,
)
from edgepipe.profiling.runners.adb import AdbHost
from edgepipe.profiling.runners.estimated import EstimatorRunner
from edgepipe.profiling.runners.local import CudaRunner, LocalRunner
from edgepipe.profiling.runners.phone import AdbAgentRunner, BenchmarkModelRunner
from edgepipe.profiling.runners.ssh import SshHost, SshRunner
from edgepipe.profiling.target import Target, resolve_target

QUICK = LatencySettings(runs=3, duration_s=0, warmup_runs=0, warmup_s=0, threads=1,
                        per_layer=False, energy=False)


@pytest.mark.parametrize("name, device, runner, via", [
    ("host", None, LocalRunner, "here"),
    ("cuda", None, CudaRunner, "cuda"),
    ("rpi5", None, EstimatorRunner, "estimated"),
    ("stm32f746", None, EstimatorRunner, "estimated"),
    ("rpi5", "ssh://pi@rpi5.local:2222", SshRunner, "ssh"),
    ("android-sd8gen2", "adb://R5CT1234", AdbAgentRunner, "adb"),
])
def test_each_way_of_reaching_a_device_has_its_runner(name, device, runner, via):
    target = resolve_target(name, device=device, remote_python="/opt/py/bin/python3")
    assert isinstance(target, Target) and target.name == name
    assert target.entry == catalog.get_target(name)
    assert type(target.runner) is runner and target.via == via
    assert isinstance(target.runner, Runner)  # the one protocol
    assert target.measured is (via != "estimated")
    assert name in target.describe() and target.runner.describe()
    assert resolve_target(target) is target  # a Target passes through untouched


def test_the_url_and_the_ssh_options_reach_the_runner(tmp_path):
    key = tmp_path / "id_ed25519"
    target = resolve_target("rpi5", device="ssh://pi@rpi5.local:2222", identity=key,
                            ssh_config=tmp_path / "config", remote_python="py3")
    runner = target.runner
    assert isinstance(runner, SshRunner)
    assert runner.host == SshHost(host="rpi5.local", user="pi", port=2222, identity=key,
                                  config=tmp_path / "config")
    assert runner.device_record() == {"via": "ssh", "destination": "pi@rpi5.local",
                                      "port": 2222, "python": "py3"}
    binary = tmp_path / "benchmark_model"
    phone = resolve_target("android-sd8gen2", device="adb://R5CT1234", benchmark_model=binary)
    assert isinstance(phone.runner, BenchmarkModelRunner)
    assert phone.runner.binary == binary and not phone.runner.needs_inputs
    parsed = resolve_target("android-sd8gen2", device=AdbHost("R5CT1234"))
    assert isinstance(parsed.runner, AdbAgentRunner) and parsed.runner.needs_inputs


def test_unknown_targets_and_bad_urls_keep_their_references():
    with pytest.raises(TargetError) as unknown:
        resolve_target("rpi")
    assert unknown.value.reference == "unknown-target" and "rpi5" in unknown.value.hint
    with pytest.raises(InputError) as bad:
        resolve_target("rpi5", device="ssh://")
    assert bad.value.reference == "bad-host"
    with pytest.raises(InputError) as bad_adb:
        resolve_target("android-sd8gen2", device="adb:R5CT1234")
    assert bad_adb.value.reference == "bad-host"


class FakeRunner:
    """A runner of a kind the verb has never heard of: it must still be measured through."""

    via = "here"
    needs_inputs = True

    def __init__(self) -> None:
        self.jobs: list[MeasureJob] = []

    def describe(self) -> str:
        return "a fake"

    def measure(self, job: MeasureJob) -> ToolMeasurement:
        self.jobs.append(job)
        return ToolMeasurement(memory={"artifact_size_bytes": job.size_block},
                               latency={"label": "measured", "steady": {"p50_s": 0.25}},
                               layers=None, energy={"label": "not-requested"},
                               runtime={"name": job.runtime, "threads": job.threads},
                               device={"via": "fake"})


def test_the_verb_measures_through_the_protocol(digits_artifacts):
    runner = FakeRunner()
    target = Target(catalog.get_target("host"), runner)
    result = profile(digits_artifacts / "digits-cnn.onnx", target, QUICK, batch=1, seed=3)
    assert isinstance(result, Profile) and result.p50_ms == pytest.approx(250.0)
    (job,) = runner.jobs
    assert job.artifact == digits_artifacts / "digits-cnn.onnx"
    assert job.files == (job.artifact,) and job.runtime == "onnxruntime" and job.threads == 1
    assert job.inputs is not None and job.inputs.kind == "random"
    assert job.inputs.arrays[0].shape == (1, 3, 32, 32)
    assert job.entry.name == "host" and job.summary is not None
    document = result.to_dict()
    assert list(document) == ["schema_version", "artifact", "target", "settings", "mode",
                              "memory", "latency", "layers", "energy", "runtime", "device"]
    assert document["target"] == {"name": "host", "title": target.entry.title,
                                  "reach": "local"}
    assert document["device"] == {"via": "fake"} and document["mode"] == "measured"


def test_an_estimate_carries_no_inputs_and_keeps_the_document_order(digits_artifacts):
    target = resolve_target("rpi5")
    measured = target.runner.measure  # the estimator's, called by the verb
    seen: list[MeasureJob] = []

    class Spy(EstimatorRunner):
        def measure(self, job: MeasureJob) -> EstimatedMeasurement:
            seen.append(job)
            return measured(job)

    spied = Target(target.entry, Spy(target.entry))
    document = profile(digits_artifacts / "digits-cnn.onnx", spied, QUICK).to_dict()
    assert seen[0].inputs is None
    assert list(document) == ["schema_version", "artifact", "target", "settings", "mode",
                              "reason", "latency", "memory", "energy"]
    assert document["mode"] == "estimated" and document["latency"]["label"] == "estimated"


def test_measurements_write_their_blocks_in_the_documents_order():
    agent = AgentMeasurement(runtime=1, latency=2, layers=3, memory=4, energy=5, device=None,
                             inputs=6, identity=7, device_state=8)
    assert list(agent.to_dict()) == ["mode", "inputs", "identity", "runtime", "device_state",
                                     "latency", "layers", "memory", "energy"]
    remote = AgentMeasurement(runtime=1, latency=2, layers=3, memory=4, energy=5,
                              device={"via": "ssh"}, inputs=6, identity=7, device_state=8)
    assert list(remote.to_dict())[:2] == ["device", "mode"]


def test_a_name_is_resolved_once_at_the_entry_point(digits_artifacts, monkeypatch):
    calls: list[str] = []
    lookup = catalog.get_target

    def counted(name: str, *args, **kwargs):
        calls.append(name)
        return lookup(name, *args, **kwargs)

    monkeypatch.setattr("edgepipe.profiling.target.get_target", counted)
    monkeypatch.setattr(catalog, "get_target", counted)
    result = profile_artifact(digits_artifacts / "digits-cnn.tflite", "rpi5", QUICK)
    assert calls == ["rpi5"] and result.mode == "estimated"
