"""``split plan``: where to cut, for a device, a server and a link.

For every single-tensor cut: the head's latency and energy on the device, the bytes over
the link, the transfer time (bytes x 8 / bandwidth + round trip), the tail's latency on the
server, the end-to-end latency and the device's energy; plus all-on-device and
all-on-server (sending the input as raw uint8 pixels, and zlib-compressed when data is
given). Layer times come from the estimator (labelled estimated, with its measured error
on the host); the bytes of a trained bottleneck are the measured ones of a split run
directory when one is given. Device energy = head time x active power + transfer time x
the radio power assumed below (no catalog device states its radio's draw).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgepipe.errors import InputError
from edgepipe.targets.schema import Target

RADIO_W = 1.0  # assumption: a Wi-Fi radio transmitting draws about 1 W on a small device
SWEEP_MBPS = (1.0, 5.0, 10.0, 50.0, 100.0, 1000.0)


@dataclass(frozen=True)
class Link:
    bandwidth_bps: float
    rtt_s: float = 0.0

    def transfer_s(self, nbytes: float) -> float:
        return nbytes * 8 / self.bandwidth_bps + (self.rtt_s if nbytes else 0.0)


def parse_rate(text: str) -> float:
    """``10Mbps`` -> 1e7 bits per second (kbps, Mbps, Gbps; bits)."""
    found = re.fullmatch(r"\s*([\d.]+)\s*([kKmMgG]?)(bps|bit/s)\s*", text)
    if not found:
        raise InputError(f"Cannot read the bandwidth {text!r}.",
                         hint="write e.g. 10Mbps, 500kbps or 1Gbps.", reference="bad-bandwidth")
    scale = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[found.group(2).lower()]
    return float(found.group(1)) * scale


def parse_duration(text: str) -> float:
    """``20ms`` -> 0.02 seconds (us, ms, s)."""
    found = re.fullmatch(r"\s*([\d.]+)\s*(us|ms|s)\s*", text)
    if not found:
        raise InputError(f"Cannot read the round trip {text!r}.", hint="write e.g. 20ms.",
                         reference="bad-rtt")
    return float(found.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[found.group(2)]


def pareto(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[str]:
    """Names of the rows no other row beats on every key (lower is better)."""
    front = []
    for row in rows:
        dominated = any(all(o[k] <= row[k] for k in keys) and any(o[k] < row[k] for k in keys)
                        for o in rows if o is not row)
        if not dominated:
            front.append(row["option"])
    return front


def plan(summary: Any, points: list[Any], device: Target, server: Target, link: Link,
         input_bytes: int, *, bottleneck: dict[str, int] | None = None,
         compressed_input_bytes: float | None = None, precision: str = "fp32") -> dict:
    """The per-cut table, the baselines, the Pareto front and a bandwidth sweep."""
    from edgepipe.targets.estimator import calibration, per_layer_seconds

    names = [layer.name for layer in summary.layers]
    on_device = np.cumsum(per_layer_seconds(summary, device, precision))
    on_server = per_layer_seconds(summary, server, "fp32")
    total_server = float(on_server.sum())
    after = total_server - np.cumsum(on_server)
    power = device.power.active_w.value if device.power.active_w else None
    options = []

    def add(option: str, head_s: float, nbytes: float, tail_s: float) -> None:
        transfer = link.transfer_s(nbytes)
        energy = None if power is None else head_s * power + (transfer if nbytes else 0) * RADIO_W
        options.append({"option": option, "head_s": head_s, "bytes": nbytes,
                        "transfer_s": transfer, "tail_s": tail_s,
                        "end_to_end_s": head_s + transfer + tail_s, "device_energy_j": energy})

    add("all on device", float(on_device[-1]), 0, 0.0)
    add("all on server (raw uint8 input)", 0.0, input_bytes, total_server)
    if compressed_input_bytes is not None:
        add("all on server (zlib input)", 0.0, compressed_input_bytes, total_server)
    for point in points:
        if point.node not in names:
            continue
        k = names.index(point.node)
        add(f"cut {point.label} (raw float32)", float(on_device[k]), point.bytes, float(after[k]))
        add(f"cut {point.label} (raw 8-bit)", float(on_device[k]), point.bytes / 4, float(after[k]))
        if bottleneck and point.label in bottleneck:
            add(f"cut {point.label} (bottleneck)", float(on_device[k]), bottleneck[point.label],
                float(after[k]))
    keys = ("end_to_end_s", "bytes") + (("device_energy_j",) if power is not None else ())
    sweep = []
    for mbps in SWEEP_MBPS:
        swept = Link(mbps * 1e6, link.rtt_s)
        best = min(options, key=lambda o: o["head_s"] + swept.transfer_s(o["bytes"]) + o["tail_s"])
        sweep.append({"mbps": mbps, "best": best["option"], "end_to_end_s": best["head_s"]
                      + swept.transfer_s(best["bytes"]) + best["tail_s"]})
    return {"label": "estimated", "device": device.name, "server": server.name,
            "link": {"bandwidth_bps": link.bandwidth_bps, "rtt_s": link.rtt_s},
            "options": options, "pareto": pareto(options, keys), "sweep": sweep,
            "models": {"latency": "estimator's per-layer roofline (MCUs: cycles per MAC)",
                       "estimator_error_on_host": (calibration().get("error") or {}).get(
                           "summary"),
                       "device_energy": f"head time x device active power + transfer time x "
                                        f"{RADIO_W} W radio (assumption)",
                       "bytes": "float32 or 8-bit tensor sizes; a bottleneck's measured codes"}}


def compressed_bytes(arrays: np.ndarray) -> float:
    """Mean zlib size (level 9) of the samples as uint8 pixels (measured on the data)."""
    low, high = float(arrays.min()), float(arrays.max())
    pixels = np.round((arrays - low) / max(high - low, 1e-12) * 255).astype(np.uint8)
    return float(np.mean([len(zlib.compress(p.tobytes(), 9)) for p in pixels]))
