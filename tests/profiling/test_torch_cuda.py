"""torch programs (.pt2) through the agent, on the CPU and, where there is one, on CUDA."""

from __future__ import annotations

import pytest
import torch

from edgepipe.errors import EdgepipeError
from edgepipe.profiling.profile import profile
from edgepipe.profiling.runner import LatencySettings

QUICK = LatencySettings(runs=20, duration_s=0.2, warmup_runs=3, threads=1, per_layer=False,
                        energy=False)


@pytest.fixture(scope="module")
def digits_pt2(tmp_path_factory):
    from edgepipe.model import load_model

    loaded = load_model("builtin:digits-cnn")
    path = tmp_path_factory.mktemp("pt2") / "digits-cnn.pt2"
    program = torch.export.export(loaded.module.eval(), (torch.zeros(1, 3, 32, 32),))
    torch.export.save(program, path)
    return path


def test_torch_program_on_the_cpu(digits_pt2):
    doc = profile(digits_pt2, "host", QUICK).to_dict()
    assert doc["runtime"]["name"] == "torch" and doc["runtime"]["options"]["device"] == "cpu"
    assert doc["latency"]["steady"]["count"] >= 20


def test_cuda_without_a_gpu_says_so(digits_pt2):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(EdgepipeError) as error:
        profile(digits_pt2, "cuda", QUICK)
    assert error.value.reference == "no-cuda"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
def test_cuda_latency_and_nvml_energy(digits_pt2):
    settings = LatencySettings(runs=50, duration_s=0.5, threads=1, per_layer=False,
                               energy=True, energy_idle_s=1.0, energy_busy_s=2.0)
    doc = profile(digits_pt2, "cuda", settings).to_dict()
    assert doc["runtime"]["options"]["device"] == "cuda"
    energy = doc["energy"]
    assert energy["label"] == "measured" and energy["sensor"]["name"] == "nvml"
    assert energy["idle_w"] > 0 and energy["busy_w"] > 0 and energy["inferences"] > 0
    # The digits CNN at batch 1 adds ~1 W to a ~115 W idle H100: a short window may not
    # resolve it, and then the profile must say so rather than print a number.
    assert energy["joules_per_inference"] > 0 or energy["warning"]
    half = profile(digits_pt2, "cuda", LatencySettings(runs=20, duration_s=0.2, threads=1,
                                                       per_layer=False, energy=False,
                                                       precision="fp16")).to_dict()
    assert half["runtime"]["options"]["precision"] == "fp16"
