"""edgepipe env: ISA features, backends and the int8 verdict."""

from __future__ import annotations

from edgepipe.system import CpuInfo, int8_verdict


def test_env_json_lists_isa_features_and_backends(cli):
    result = cli("env", "--json")
    assert result.code == 0, result
    report = result.json()["result"]
    features = report["cpu"]["features"]
    for name in ("avx2", "avx512_vnni", "avx_vnni", "amx_int8") if report["cpu"]["arch"] in (
            "x86_64", "amd64") else ("asimddp", "i8mm"):
        assert name in features
    assert report["backends"]["torch"] and report["backends"]["onnxruntime"]
    assert report["cpu"]["usable_cores"] >= 1
    assert isinstance(report["int8"]["accelerated"], bool)


def test_env_human_output_warns_when_int8_is_not_accelerated(cli):
    result = cli("env")
    assert result.code == 0
    assert "int8" in result.stdout
    report = cli("env", "--json").json()["result"]
    if not report["int8"]["accelerated"]:
        assert "warning:" in result.stdout


def _cpu(arch: str, *flags: str) -> CpuInfo:
    return CpuInfo(model="test", arch=arch, logical_cores=4, physical_cores=4, usable_cores=4,
                   cgroup_quota_cores=None, features={f: True for f in flags})


def test_int8_verdicts():
    assert int8_verdict(_cpu("x86_64", "avx2", "avx512_vnni")).accelerated
    assert int8_verdict(_cpu("x86_64", "amx_int8")).instructions == ["amx_int8"]
    plain = int8_verdict(_cpu("x86_64", "avx2"))
    assert not plain.accelerated and "not be faster" in plain.warning
    assert int8_verdict(_cpu("aarch64", "asimd", "asimddp")).accelerated
    pi4 = int8_verdict(_cpu("aarch64", "asimd"))
    assert not pi4.accelerated and "Raspberry Pi 4" in pi4.warning


def test_the_environment_and_host_identity_are_typed():
    from edgepipe.system import EnvironmentReport, HostIdentity, environment_report, host_identity

    report = environment_report(runtime_details=False)
    assert isinstance(report, EnvironmentReport) and report.runtimes is None
    document = report.to_dict()
    assert list(document) == ["python", "platform", "cpu", "int8", "memory_bytes", "threads",
                              "backends"]
    assert document["cpu"]["usable_cores"] == report.cpu.usable_cores >= 1
    assert document["int8"]["summary"] == report.int8.summary
    identity = host_identity()
    assert isinstance(identity, HostIdentity) and identity.usable_cores >= 1
    assert list(identity.to_dict()) == ["hostname", "os", "python", "cpu", "arch",
                                        "usable_cores", "isa"]
    assert identity.to_dict()["isa"] == list(identity.isa)
