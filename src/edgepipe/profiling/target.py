"""A target resolved once: its catalog entry, how it is reached and the runner that measures it.

``resolve_target("rpi5", device="ssh://pi@rpi5.local")`` looks the name up in the catalog
(bundled, and the user's: ``catalog=DIR`` or ``$EDGEPIPE_CATALOG``) once (``unknown-target`` with close matches when it is not there), reads the ``--host`` URL
(``bad-host``) and picks the runner:

=====================  ==========  =====================================================
what                   ``via``     runner
=====================  ==========  =====================================================
``adb://`` + binary    adb         :class:`~.runners.phone.BenchmarkModelRunner`
``adb://``             adb         :class:`~.runners.phone.AdbAgentRunner`
``ssh://``             ssh         :class:`~.runners.ssh.SshRunner`
``reach: local``, GPU  cuda        :class:`~.runners.local.CudaRunner`
``reach: local``       here        :class:`~.runners.local.LocalRunner`
anything else          estimated   :class:`~.runners.estimated.EstimatorRunner`
=====================  ==========  =====================================================

The :class:`Target` is then passed down (the profile verb, the recipe's profile step,
``split plan --measure``); nothing below looks the name up again. A device that cannot be
reached is found when the runner first connects (``unreachable``, ``ssh-auth``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepipe.devices.catalog import get_target
from edgepipe.devices.schema import DeviceEntry
from edgepipe.profiling.runner import Runner, Via
from edgepipe.profiling.runners.adb import AdbHost, parse_serial
from edgepipe.profiling.runners.estimated import EstimatorRunner
from edgepipe.profiling.runners.local import CudaRunner, LocalRunner
from edgepipe.profiling.runners.phone import AdbAgentRunner, BenchmarkModelRunner
from edgepipe.profiling.runners.ssh import SshHost, SshRunner, parse_host

DeviceLink = SshHost | AdbHost


@dataclass(frozen=True)
class Target:
    """A catalog entry with the way it is reached now and the runner that measures it."""

    entry: DeviceEntry
    runner: Runner

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def via(self) -> Via:
        """How it is reached: ``here``, ``cuda``, ``ssh``, ``adb`` or ``estimated``."""
        return self.runner.via

    @property
    def measured(self) -> bool:
        """True when the runner measures (here, CUDA, a device); False for estimates."""
        return self.runner.via != "estimated"

    def describe(self) -> str:
        return f"{self.name} ({self.entry.title}): {self.runner.describe()}"

    def to_dict(self) -> dict[str, Any]:
        """The Profile document's ``target`` block."""
        return {"name": self.entry.name, "title": self.entry.title, "reach": self.entry.reach}


def device_link(url: str | None, *, benchmark_model: Path | None = None,
                identity: Path | None = None, config: Path | None = None) -> DeviceLink | None:
    """The device behind a ``--host`` URL: ``adb://SERIAL`` (a phone; ``benchmark_model``
    is TFLite's binary to run there) or ``ssh://user@host[:port]`` (``identity`` and
    ``config``: the ssh client's ``-i`` and ``-F``); None for no URL."""
    if url is None:
        return None
    if url.startswith("adb://"):
        return AdbHost(parse_serial(url), benchmark_model)
    return parse_host(url, identity=identity, config=config)


def runner_for(entry: DeviceEntry, link: DeviceLink | None,
               remote_python: str = "python3") -> Runner:
    """The runner that measures ``entry`` reached through ``link`` (see the module's table)."""
    if isinstance(link, AdbHost):
        if link.benchmark_model is not None:
            return BenchmarkModelRunner(link)
        return AdbAgentRunner(link, remote_python)
    if isinstance(link, SshHost):
        return SshRunner(link, remote_python)
    if entry.reach == "local":
        return CudaRunner() if entry.device == "cuda" else LocalRunner()
    return EstimatorRunner(entry)


def resolve_target(target: str | DeviceEntry | Target, *,
                   device: str | DeviceLink | None = None,
                   benchmark_model: Path | None = None, identity: Path | None = None,
                   ssh_config: Path | None = None, remote_python: str = "python3",
                   catalog: Path | None = None) -> Target:
    """The :class:`Target` for a catalog name (or entry) and a ``--host`` URL (or a parsed
    :class:`SshHost`/:class:`AdbHost`); a :class:`Target` is returned as it is. A name is
    looked up in the bundled catalog and the user's (``catalog``, else
    ``$EDGEPIPE_CATALOG``)."""
    if isinstance(target, Target):
        return target
    entry = get_target(target, user=catalog) if isinstance(target, str) else target
    link = device if not isinstance(device, str) else device_link(
        device, benchmark_model=benchmark_model, identity=identity, config=ssh_config)
    return Target(entry, runner_for(entry, link, remote_python))
