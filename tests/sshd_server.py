"""A throwaway OpenSSH server on 127.0.0.1 for the SSH runner's tests.

Its own host key and user key, a client config naming both (``ssh -F``) with a
``known_hosts`` that holds the host key, so host key checking stays strict. Needs
``/usr/sbin/sshd`` (`.ci/run` installs openssh-server) and to run as root (sshd switches
to the logging-in user); tests skip otherwise.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"


@dataclass
class Sshd:
    process: subprocess.Popen
    port: int
    folder: Path
    client_config: Path
    alias: str = "edgepipe-test-device"

    @property
    def url(self) -> str:
        return f"ssh://{self.alias}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def available() -> str | None:
    """Why the server cannot run here, or None."""
    if not Path(SSHD).exists():
        return "openssh-server is not installed (apt-get install openssh-server)"
    if os.geteuid() != 0:
        return "sshd needs root to log a user in"
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen is missing"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(folder: Path) -> Sshd:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(folder / name)], check=True)
    (folder / "authorized_keys").write_text((folder / "user_key.pub").read_text())
    port = free_port()
    config = folder / "sshd_config"
    config.write_text("\n".join([
        "ListenAddress 127.0.0.1", f"Port {port}", f"HostKey {folder / 'host_key'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}", f"PidFile {folder / 'sshd.pid'}",
        "StrictModes no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes", "PermitRootLogin prohibit-password", "UsePAM no",
        "MaxStartups 50", ""]))
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([SSHD, "-D", "-f", str(config), "-E", str(folder / "sshd.log")])
    host_key = (folder / "host_key.pub").read_text().split()
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    client = folder / "ssh_config"
    client.write_text("\n".join([
        "Host edgepipe-test-device", "  HostName 127.0.0.1", f"  Port {port}",
        f"  User {getpass.getuser()}", f"  IdentityFile {folder / 'user_key'}",
        "  IdentitiesOnly yes", f"  UserKnownHostsFile {folder / 'known_hosts'}",
        "  StrictHostKeyChecking yes", "  LogLevel ERROR", ""]))
    server = Sshd(process, port, folder, client)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        done = subprocess.run(["ssh", "-F", str(client), "-o", "BatchMode=yes",
                               server.alias, "true"], capture_output=True, text=True,
                              timeout=15, check=False)
        if done.returncode == 0:
            return server
        time.sleep(0.3)
    server.stop()
    log = (folder / "sshd.log").read_text() if (folder / "sshd.log").exists() else ""
    raise RuntimeError(f"sshd did not accept a login: {done.stderr} {log[-800:]}")
