"""Profile on this machine (its CPU, or its GPU for ``cuda``): the agent in a fresh process.

The agent (:mod:`edgepipe.profiling.agent.agent`) runs with this interpreter in a child
process, so the peak memory it reports is the inference's and not edgepipe's imports; inputs
travel as ``.npy`` files in a temporary folder, removed afterwards.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from edgepipe.errors import EdgepipeError
from edgepipe.formats import runtime_of_suffix
from edgepipe.profiling.agent import AGENT
from edgepipe.profiling.runner import InputBatch, LatencySettings, MeasureJob
from edgepipe.profiling.runners.agent_runner import (
    AgentRequest,
    AgentResult,
    AgentRunner,
    parse_agent_output,
    stage_inputs,
)


def run_agent_locally(artifact: Path, batch: InputBatch, settings: LatencySettings,
                      threads: int) -> AgentResult:
    """The agent's result for ``artifact`` run in a child process of this interpreter."""
    runtime = runtime_of_suffix()[artifact.suffix.lower()]
    with tempfile.TemporaryDirectory(prefix="edgepipe-profile-") as name:
        folder = Path(name)
        paths = tuple(str(folder / n) for n in stage_inputs(folder, batch))
        request = AgentRequest(str(artifact.resolve()), runtime, paths, settings, threads)
        request_path = request.write(folder)
        try:
            done = subprocess.run([sys.executable, str(AGENT), str(request_path)],
                                  capture_output=True, text=True, timeout=settings.timeout_s,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise EdgepipeError(
                f"Profiling {artifact.name} took longer than {settings.timeout_s:.0f} s.",
                hint="lower --runs or --duration, or check that the model runs at all with "
                "`edgepipe eval`.", reference="profile-timeout") from exc
    return parse_agent_output(done.stdout, done.stderr, done.returncode, artifact)


class LocalRunner(AgentRunner):
    """This machine's CPU: the agent in a child process of this Python."""

    via = "here"

    def run_agent(self, job: MeasureJob) -> AgentResult:
        assert job.inputs is not None
        return run_agent_locally(job.artifact, job.inputs, job.settings, job.threads)

    def describe(self) -> str:
        return "measured on this machine (the agent in a child process)"


class CudaRunner(LocalRunner):
    """This machine's NVIDIA GPU: the same agent, its runtime on ``cuda`` (the verb sets
    the settings' device from the catalog entry)."""

    via = "cuda"

    def describe(self) -> str:
        return "measured on this machine's GPU (CUDA, the agent in a child process)"
