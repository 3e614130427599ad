"""One name and one unit per concept: every option of every command is in NAMES, no
concept has two names, and the old spellings are still taken (with a warning) but no longer
shown."""

from __future__ import annotations

import typer.main

from edgepipe.cli.deprecated import RENAMED, rewrite
from edgepipe.cli.main import app

# option -> the concept it names (with its unit). A new option needs a row here: check that
# its concept has no name already. A name with two meanings names the commands of each.
NAMES: dict[str, str | dict[str, str]] = {
    # what every command shares
    "--json": "print one JSON document on stdout",
    "--debug": "tracebacks and debug logs",
    "--quiet": "only results and errors", "--verbose": "info and third-party logs",
    "--version": "print the version",
    "--install-completion": "shell completion (install)",
    "--show-completion": "shell completion (print)",
    "--out": "the run directory written", "--name": "stem of the artifact files",
    "--data": "DATA spec", "--normalize": "scaling of image folders",
    "--seed": "seed of splits and random inputs", "--threads": "runtime threads",
    "--input-shape": "shape of the one float input", "--input": "NAME:SHAPE:DTYPE of an input",
    "--weights": "state dict of a MODEL", "--model-arg": "factory keyword argument",
    "--trust-pickle": "allow pickled code", "--catalog": "user catalog folder",
    "--format": "artifact format (repeated)", "--batch-size": "samples per inference",
    "--samples": "how many samples are run",
    "--sequence-length": "tokens per text input",
    # inspect
    "--all": "every layer", "--patch-plan": "patch-based inference plans",
    # export
    "--opset": "ONNX opset", "--dynamic-batch": "dynamic batch dimension",
    "--simplify": "onnxslim simplification", "--nhwc": "channel-last TFLite I/O",
    "--fp16": "OpenVINO fp16 weights", "--atol": "parity tolerance (absolute)",
    # compress
    "--method": "compression method", "--calibration": "int8 activation range method",
    "--calib-size": "calibration samples", "--per-channel": "weight scale per channel",
    "--per-tensor": "weight scale per tensor", "--reduce-range": "7-bit weights",
    "--no-reduce-range": "8-bit weights", "--exclude": "node kept in float (repeated)",
    "--weight-bits": "weight bits", "--qat": "quantization-aware training",
    "--ptq": "post-training quantization", "--epochs": "most training epochs",
    "--ratio": "lowrank: share of parameters kept",
    "--energy": {"compress": "lowrank: share of squared singular values kept",
                 "profile": "measure energy (flag)"},
    "--no-energy": "do not measure energy",
    "--rank-target": "what --ratio counts", "--rank-selection": "how ranks are picked",
    "--latency-check": "time factorized layers", "--no-latency-check": "keep every factorization",
    "--activation-aware": "SVD from activations", "--plain-svd": "SVD from weights",
    "--group-size": "int4-weight: input features per scale",
    "--symmetric": "4-bit weights without zero point",
    "--asymmetric": "4-bit weights with zero points",
    "--data-aware": "int4-weight: the runtime's data-aware algorithm",
    "--data-free": "int4-weight: round to nearest",
    "--keep-8bit": "output head in 8 bits", "--all-4bit": "every layer in 4 bits",
    "--binary-activations": "sign activations", "--no-binary-activations": "binary weights only",
    "--first-last-bits": "bits of first and last layers",
    "--allow-random-calibration": "calibrate on random inputs",
    "--sensitivity": "per-layer sensitivity", "--max-drop": "accuracy budget (top-1 points)",
    # eval
    "--reference": "MODEL or artifact compared with", "--reference-weights":
    "state dict of --reference", "--subset": "which samples of the data (eval split or all)",
    # profile
    "--target": "catalog target", "--runs": "timed runs", "--duration": "timed seconds",
    "--warmup": "warm-up runs", "--cpus": "CPUs pinned", "--precision": "precision run in",
    "--per-layer": "per-layer times", "--no-per-layer": "no per-layer times",
    "--energy-window": "seconds of the energy measurement",
    "--remote": "device reached: ssh://user@host[:port] or adb://SERIAL",
    "--benchmark-model": "TFLite's Android benchmark_model", "--identity": "SSH private key",
    "--ssh-config": "SSH client config", "--remote-python": "Python on the device",
    "--top": "slowest layers shown", "--save": "profile JSON file written",
    # targets
    "--require-fit": "exit 1 unless it fits", "--force": "replace a user target",
    # split
    "--at": "layer cut at", "--bottleneck": "bottleneck channels", "--bits": "code bits",
    "--stride": "bottleneck stride", "--int8-head": "int8 head",
    "--distill-epochs": "split stage 1 epochs", "--finetune-epochs": "split stage 2 epochs",
    "--device": "split plan: the device's catalog target",
    "--server": {"split plan": "the server's catalog target",
                 "split run": "the server's URL (http:// or grpc://)"},
    "--bandwidth": "link bandwidth (e.g. 10Mbps)", "--rtt": "link round trip (e.g. 20ms)",
    "--split": "a split run directory", "--measure": "profile heads and tails",
    "--cut": "a cut considered (repeated)", "--head": "head artifact run",
    "--zlib": "codes as one zlib stream", "--model-name": "model name on the server",
    "--codec": "input codec baseline (repeated)", "--quality": "JPEG/WebP quality (repeated)",
    "--entropy": "codes range-coded with a learned density (bitstreams)",
    "--rate-weight": "weight of the rate term, per bit (lambda)",
    "--target-bytes": "bitstream bytes per sample aimed at",
    "--timeout": "seconds a request may take", "--token-env": "variable holding the token",
    # serve and export-triton
    "--host": "address the server binds", "--port": "REST port", "--grpc-port": "gRPC port",
    "--runtime": "runtime of the tail", "--max-request-bytes": "largest request body (bytes)",
    "--header-timeout": "seconds for request headers", "--read-timeout": "seconds for a body",
    "--idle-timeout": "seconds an idle connection stays", "--queue": "requests waiting",
    "--max-connections": "open connections kept", "--allow-no-token": "serve with no token",
    "--max-batch-size": "Triton's largest batch", "--queue-delay-us": "Triton's queue delay (µs)",
    "--storage-uri": "where KServe finds the repository",
}


def _options() -> dict[str, dict[str, str]]:
    """option -> {command path: help}, for every command."""
    found: dict[str, dict[str, str]] = {}

    def walk(command, path):
        for param in command.params:
            if param.param_type_name == "option":
                for name in [*param.opts, *param.secondary_opts]:
                    if name.startswith("--"):
                        found.setdefault(name, {})[" ".join(path) or "edgepipe"] = param.help
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def test_every_option_is_in_the_table():
    missing = sorted(set(_options()) - set(NAMES))
    assert not missing, f"options with no row in NAMES (check the concept has no name): {missing}"
    unused = sorted(set(NAMES) - set(_options()))
    assert not unused, f"rows for options no command has: {unused}"


def test_no_concept_has_two_names():
    concepts: dict[str, str] = {}
    for name, concept in NAMES.items():
        for meaning in concept.values() if isinstance(concept, dict) else [concept]:
            assert meaning not in concepts, f"{name} and {concepts[meaning]} name one concept"
            concepts[meaning] = name


def test_a_name_with_two_meanings_is_used_only_where_the_table_says():
    for name, uses in _options().items():
        if isinstance(NAMES.get(name), dict):
            assert set(uses) <= set(NAMES[name]), (name, sorted(uses))


def test_old_spellings_are_rewritten_and_no_longer_options():
    options = _options()
    for path, renamed in RENAMED.items():
        for old, new in renamed.items():
            command = " ".join(path)
            assert command not in options.get(old, {}), f"{old} is still an option of {command}"
            assert command in options[new]
    args, warnings = rewrite(["split", "plan", "m.onnx", "--cuts", "a,b", "--host=ssh://x"])
    assert args == ["split", "plan", "m.onnx", "--cut", "a", "--cut", "b", "--remote=ssh://x"]
    assert len(warnings) == 2 and "--cuts is now --cut" in warnings[0]
    # serve keeps --host (the address it binds): only profile's and split plan's moved
    assert rewrite(["serve", "d", "--host", "0.0.0.0"]) == (["serve", "d", "--host", "0.0.0.0"],
                                                              [])
    assert rewrite(["split", "m.onnx", "--at", "x"])[0] == ["split", "m.onnx", "--at", "x"]


def test_an_old_spelling_still_works_with_a_warning(cli):
    result = cli("profile", "--batch", "2", "--help")
    assert result.code == 0
    assert "--batch is now --batch-size in `edgepipe profile`" in result.stderr
    assert "--batch-size" in result.stdout


def test_global_options_and_json_are_taken_before_or_after_the_subcommand(cli):
    from edgepipe.cli.main import global_options_first

    assert global_options_first(["--json", "-q", "targets", "list"]) == [
        "--quiet", "targets", "list", "--json"]
    assert global_options_first(["targets", "list", "--json", "-v"]) == [
        "--verbose", "targets", "list", "--json"]
    before, after = cli("--json", "targets", "list"), cli("targets", "list", "--json")
    assert before.code == after.code == 0
    assert before.json()["result"] == after.json()["result"]
