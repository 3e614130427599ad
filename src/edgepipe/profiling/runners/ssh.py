"""Profile on a device over SSH, with the system's OpenSSH client.

The user's ``~/.ssh/config``, agent, jump hosts and known hosts work as they do for
``ssh`` itself (``--ssh-config FILE`` passes ``-F``). The runner makes a temporary folder on
the device, copies the agent (four files of standard-library Python, numpy and the runtime
needed there), the artifact and the inputs, runs the agent with the device's ``python3``
(or ``--remote-python``), brings its JSON back and removes the folder, also on failure.
Host keys are checked as ssh is configured to; the runner never turns checking off.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from edgepipe.errors import EdgepipeError, InputError, TargetError, UnreachableError
from edgepipe.profiling.agent import AGENT_DIR, AGENT_FILES
from edgepipe.profiling.runners.agent_runner import (
    AgentRequest,
    AgentResult,
    RemoteAgentRunner,
    parse_agent_output,
)


@dataclass(frozen=True)
class SshHost:
    """Where to connect: ``ssh://[user@]host[:port]`` plus the client's options."""

    host: str
    user: str | None = None
    port: int | None = None
    identity: Path | None = None
    config: Path | None = None
    connect_timeout_s: int = 10
    options: tuple[str, ...] = field(default_factory=tuple)

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def ssh_args(self) -> list[str]:
        """The ssh client's options."""
        args = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout_s}",
                "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2"]
        if self.config:
            args[:0] = ["-F", str(self.config)]
        if self.port:
            args += ["-p", str(self.port)]
        if self.identity:
            args += ["-i", str(self.identity)]
        for option in self.options:
            args += ["-o", option]
        return args


def parse_host(url: str, **options: Any) -> SshHost:
    """``ssh://user@host:port`` (user and port optional) -> :class:`SshHost`."""
    parsed = urlparse(url)
    if parsed.scheme != "ssh" or not parsed.hostname:
        raise InputError(f"Cannot read --remote {url!r}.",
                         hint="write ssh://user@host or ssh://user@host:2222 (a name from "
                         "~/.ssh/config works as the host).", reference="bad-host")
    try:
        port = parsed.port
    except ValueError:
        raise InputError(f"The port of --remote {url!r} is not a number.",
                         hint="write ssh://user@host:2222.", reference="bad-host") from None
    return SshHost(host=parsed.hostname, user=parsed.username, port=port, **options)


def explain(done: subprocess.CompletedProcess, what: str, host: SshHost,
            partial: list[dict[str, Any]] | None = None) -> EdgepipeError:
    """A clear error for a failed ssh/scp call, by what OpenSSH printed."""
    text = (done.stderr or "").strip()
    tail = "\n".join(line for line in text.splitlines()[-4:]
                     if not line.startswith("edgepipe-phase"))
    details = {"stderr": tail, "exit": done.returncode, "partial": partial or []}
    where = host.destination + (f":{host.port}" if host.port else "")
    if "Host key verification failed" in text or "REMOTE HOST IDENTIFICATION" in text:
        return TargetError(f"{where}: the host key is unknown or has changed ({what}).",
                           hint=f"connect once with `ssh {host.destination}` and check the "
                           "fingerprint, or add it to known_hosts; edgepipe does not skip "
                           "host key checking.", reference="host-key", details=details)
    if "Permission denied" in text:
        return TargetError(f"{where} refused the login ({what}).",
                           hint="give the key with --identity, or check that `ssh "
                           f"{host.destination}` works without a password.",
                           reference="ssh-auth", details=details)
    refused = ("Connection refused", "timed out", "No route to host",
               "Could not resolve hostname", "Network is unreachable")
    if any(word in text for word in refused):
        return UnreachableError(f"Cannot reach {where} ({what}): {tail}",
                           hint="check the host, the port and that sshd runs there "
                           f"(`ssh {host.destination}`).", reference="unreachable",
                           details=details)
    if done.returncode == 127 or re.search(r"python3?: (command )?not found|No such file", text):
        return TargetError(f"{where} has no such Python ({what}): {tail}",
                           hint="install python3 with numpy and the runtime there, or name "
                           "the interpreter with --remote-python (e.g. ~/venv/bin/python).",
                           reference="remote-python-missing", details=details)
    if done.returncode == 255:
        done_phases = ", ".join(p["phase"] for p in partial or []) or "nothing"
        return UnreachableError(f"The connection to {where} was lost ({what}); measured before "
                           f"it dropped: {done_phases}.",
                           hint="check the device (power, network, thermal shutdown) and run "
                           "again; the partial figures are in the error's details.",
                           reference="connection-lost", details=details)
    return TargetError(f"{what} on {where} failed (exit {done.returncode}): {tail}",
                       hint="run the same with `ssh` by hand to see more; --debug shows the "
                       "command.", reference="remote-failed", details=details)


def phases(stderr: str) -> list[dict[str, Any]]:
    """The agent's progress lines: what it had measured when the run stopped."""
    found = []
    for line in stderr.splitlines():
        if line.startswith("edgepipe-phase "):
            try:
                found.append(json.loads(line[len("edgepipe-phase "):]))
            except ValueError:
                continue
    return found


def check_room(probe: str, files: list[Path], host: SshHost) -> None:
    """Refuse, before copying, an artifact bigger than the device's free disk or memory
    (``df -Pk`` and ``MemAvailable`` as printed by the probe; skipped where unreadable)."""
    need = sum(path.stat().st_size for path in files)
    lines = probe.splitlines()
    disk = lines[1].split() if len(lines) > 1 else []
    if len(disk) >= 4 and disk[3].isdigit() and need > int(disk[3]) * 1024:
        raise TargetError(f"{host.destination} has {int(disk[3]) * 1024:,} bytes free in /tmp; "
                          f"the artifact and inputs take {need:,}.", hint="free space on the "
                          "device or profile a smaller (quantized) artifact.",
                          reference="device-disk-full")
    memory = re.search(r"MemAvailable:\s+(\d+) kB", probe)
    if memory and need > int(memory.group(1)) * 1024:
        raise TargetError(f"{host.destination} has {int(memory.group(1)) * 1024:,} bytes of "
                          f"memory available; the artifact alone is {need:,} bytes.",
                          hint="profile a smaller (quantized) artifact on this device.",
                          reference="device-memory-too-small")


class SshRunner(RemoteAgentRunner):
    """Runs the agent on one device over ssh."""

    via = "ssh"

    def __init__(self, host: SshHost, remote_python: str = "python3") -> None:
        self.host = host
        self.remote_python = remote_python

    def device_record(self) -> dict[str, Any]:
        return {"via": "ssh", "destination": self.host.destination, "port": self.host.port,
                "python": self.remote_python}

    def describe(self) -> str:
        port = f":{self.host.port}" if self.host.port else ""
        return f"measured over ssh on {self.host.destination}{port} ({self.remote_python})"

    def ssh(self, command: str, timeout_s: float, what: str) -> subprocess.CompletedProcess:
        """Run ``command`` on the device. Its stdin stays open while we wait: when this
        process dies (Ctrl-C, a kill), the pipe closes, the remote side reads end-of-file
        and the agent stops itself instead of running on unattended."""
        args = ["ssh", *self.host.ssh_args(), self.host.destination, command]
        read_end, write_end = os.pipe()
        try:
            done = subprocess.run(args, stdin=read_end, capture_output=True, text=True,
                                  timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise TargetError(f"{what} on {self.host.destination} took over {timeout_s:.0f} s.",
                              hint="the device may be hung or very slow; lower --runs or "
                              "--duration.", reference="remote-timeout") from exc
        except FileNotFoundError as exc:
            raise TargetError("The OpenSSH client (`ssh`) is not installed here.",
                              hint="install openssh-client.", reference="no-ssh") from exc
        finally:
            os.close(read_end)
            os.close(write_end)
        if done.returncode != 0:
            raise explain(done, what, self.host, phases(done.stderr))
        return done

    def put(self, files: list[Path], remote_dir: str, timeout_s: float) -> None:
        """Copy ``files`` (flat) into ``remote_dir`` as one tar stream over ssh: it needs
        only ``tar`` on the device (busybox has it), not an SFTP server as scp does now."""
        stream = io.BytesIO()
        with tarfile.open(fileobj=stream, mode="w") as archive:
            for path in files:
                archive.add(str(path), arcname=path.name)
        args = ["ssh", *self.host.ssh_args(), self.host.destination,
                f"tar -C {shlex.quote(remote_dir)} -xf -"]
        try:
            done = subprocess.run(args, input=stream.getvalue(), capture_output=True,
                                  timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise TargetError(f"Copying to {self.host.destination} took over {timeout_s:.0f} s.",
                              hint="check the link.", reference="remote-timeout") from exc
        if done.returncode != 0:
            text = subprocess.CompletedProcess(args, done.returncode, "",
                                               done.stderr.decode(errors="replace"))
            raise explain(text, "copying the agent and artifact", self.host)

    def run_remote(self, files: list[Path], request: AgentRequest, folder: Path,
                   timeout_s: float) -> AgentResult:
        """Copy ``files`` and the agent, run it on ``request`` (paths relative to the remote
        folder are made absolute there), return its JSON; the remote folder is removed."""
        probe = self.ssh("d=$(mktemp -d /tmp/edgepipe-XXXXXX) && echo $d && df -Pk $d | tail -1 "
                         "&& grep MemAvailable /proc/meminfo || true", 60, "making a folder")
        if not probe.stdout.strip().startswith("/"):
            raise TargetError(f"Cannot make a folder under /tmp on {self.host.destination}.",
                              hint="check that /tmp exists and is writable there.",
                              reference="remote-failed")
        remote = probe.stdout.splitlines()[0].strip()
        try:
            check_room(probe.stdout, files, self.host)
            request = request.placed(remote)
            request_path = request.write(folder)
            agent = [AGENT_DIR / name for name in AGENT_FILES]
            self.put([*agent, *files, request_path], remote, timeout_s)
            command = (f"cd {shlex.quote(remote)} && {self.remote_python} agent.py "
                       "request.json --exit-on-eof")
            done = self.ssh(command, timeout_s, "profiling")
        finally:
            with contextlib.suppress(subprocess.TimeoutExpired):  # best effort on a dead link
                subprocess.run(["ssh", *self.host.ssh_args(), self.host.destination,
                                f"rm -rf {shlex.quote(remote)}"], capture_output=True,
                               timeout=30, check=False)
        return parse_agent_output(done.stdout, done.stderr, done.returncode,
                                  Path(request.artifact))
