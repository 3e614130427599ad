"""The profiling agent: the files copied to a device (or run here in a child process).

They import nothing from edgepipe (standard library, numpy and the one runtime asked for),
so they run on a device's own Python 3.8+; each imports its siblings by plain name there.
"""

from pathlib import Path

AGENT_DIR = Path(__file__).resolve().parent
AGENT_FILES = ("agent.py", "agent_runtimes.py", "device_state.py", "energy.py", "sensors.py")
AGENT = AGENT_DIR / "agent.py"
