"""``split plan``: where to cut, for a device, a server and a link.

For every single-tensor cut: the head's latency and energy on the device, the bytes over
the link, the transfer time (bytes x 8 / bandwidth + round trip), the tail's latency on the
server, the end-to-end latency and the device's energy; plus all-on-device and
all-on-server (sending the input as raw uint8 pixels, and zlib-compressed when data is
given). Layer times come from the estimator (labelled estimated, with its measured error
on the host); the bytes of a trained bottleneck are the measured ones of a split run
directory when one is given. Device energy = head time x active power + transfer time x
the radio power assumed below (no catalog device states its radio's draw).

Given data with an image input, the input-codec baselines are options too (see
:mod:`edgepipe.split.codecs`): the input sent as PNG, JPEG or WebP and the whole model run
on the server; their bytes and accuracy are measured on the eval samples, the device pays
the encode time (measured here, estimated on a catalog device), and the plan says plainly
when one beats every cut.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from edgepipe.devices.estimator import BYTES_PER_ELEMENT
from edgepipe.devices.schema import DeviceEntry
from edgepipe.errors import InputError
from edgepipe.json_types import JsonObject

if TYPE_CHECKING:
    from edgepipe.split.codecs import CodecResult
    from edgepipe.split.measure import CutTimes  # imports torch

RADIO_W = 1.0  # assumption: a Wi-Fi radio transmitting draws about 1 W on a small device
SWEEP_MBPS = (1.0, 5.0, 10.0, 50.0, 100.0, 1000.0)


@dataclass(frozen=True)
class Link:
    bandwidth_bps: float
    rtt_s: float = 0.0

    def transfer_s(self, nbytes: float) -> float:
        return nbytes * 8 / self.bandwidth_bps + (self.rtt_s if nbytes else 0.0)


_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"


def _quantity(text: str, units: str, scales: dict[str, float]) -> float | None:
    """A number followed by one of ``units`` (a regex group) in the base unit, or None."""
    found = re.fullmatch(rf"\s*{_NUMBER}\s*{units}\s*", str(text))
    return None if not found else float(found.group(1)) * scales[found.group(2).lower()]


def parse_rate(text: str) -> float:
    """``10Mbps`` -> 1e7 bits per second (kbps, Mbps, Gbps; bits); more than zero."""
    rate = _quantity(text, r"([kKmMgG]?)(?:bps|bit/s)", {"": 1, "k": 1e3, "m": 1e6, "g": 1e9})
    if rate is None:
        raise InputError(f"Cannot read the bandwidth {text!r}.",
                         hint="write a positive rate, e.g. 10Mbps, 500kbps or 1Gbps.",
                         reference="bad-bandwidth")
    if not (math.isfinite(rate) and 1 <= rate <= 1e13):
        raise InputError(f"The bandwidth {text!r} is {'zero or ' if rate < 1 else ''}"
                         f"out of range: a link carries between 1 bps and 10 Tbps.",
                         hint="write e.g. 10Mbps, 500kbps or 1Gbps.", reference="bad-bandwidth")
    return rate


def parse_duration(text: str) -> float:
    """``20ms`` -> 0.02 seconds (us, ms, s); at most an hour."""
    seconds = _quantity(text, "(us|ms|s)", {"us": 1e-6, "ms": 1e-3, "s": 1.0})
    if seconds is None:
        raise InputError(f"Cannot read the round trip {text!r}.",
                         hint="write a duration of zero or more, e.g. 20ms.", reference="bad-rtt")
    if seconds > 3600:
        raise InputError(f"The round trip {text!r} is over an hour.", hint="write e.g. 20ms.",
                         reference="bad-rtt")
    return seconds


PRECISIONS = tuple(BYTES_PER_ELEMENT)  # what the estimator has device figures for


def check_precision(precision: str) -> str:
    """The head's precision on the device: one the estimator knows, or an InputError."""
    if precision in PRECISIONS:
        return precision
    raise InputError(f"Unknown precision {precision!r} for the head.",
                     hint=f"use one of: {', '.join(PRECISIONS)}.", reference="bad-precision")


def pareto(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[str]:
    """Names of the rows no other row beats on every key (lower is better)."""
    front = []
    for row in rows:
        dominated = any(all(o[k] <= row[k] for k in keys) and any(o[k] < row[k] for k in keys)
                        for o in rows if o is not row)
        if not dominated:
            front.append(row["option"])
    return front


@dataclass
class SplitPlan:
    """``split plan``'s answer: every option (all on the device, all on the server, each cut)
    with its head, bytes, transfer, tail, end to end and device energy; the Pareto front;
    the best option at each bandwidth of a sweep; and how each figure was obtained."""

    label: str
    device: str
    server: str
    link: dict[str, float]
    options: list[dict[str, Any]]
    pareto: list[str]
    sweep: list[dict[str, Any]]
    models: dict[str, Any]
    codecs: dict[str, Any] | None = None  # CodecResult.to_dict(): the input codecs measured
    verdict: str | None = None  # whether an input codec beats every cut, in one sentence

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> SplitPlan:
        return cls(**{f.name: document[f.name] for f in fields(cls) if f.name in document})


def plan(summary: Any, points: list[Any], device: DeviceEntry, server: DeviceEntry, link: Link,
         input_bytes: int, *, bottleneck: dict[str, dict[str, Any]] | None = None,
         compressed_input_bytes: float | None = None, precision: str = "fp32",
         measured: CutTimes | None = None, codecs: CodecResult | None = None) -> SplitPlan:
    """The per-cut table, the baselines, the Pareto front and a bandwidth sweep.
    ``measured`` (from :mod:`edgepipe.split.measure`) replaces estimates where it has them;
    ``bottleneck`` (from :func:`edgepipe.split.measure.bottleneck_rows`) gives a trained
    split's bytes and its own head (with the encoder) and tail (with the decoder) times;
    ``codecs`` (from :func:`edgepipe.split.codecs.measure_codecs`) adds a row per input
    codec setting. A codec row that loses more than ``ACCURACY_SLACK`` top-1 points is
    listed but left out of the Pareto front and the sweep."""
    from edgepipe.devices.estimator import calibration, per_layer_seconds

    names = [layer.name for layer in summary.layers]
    on_device = np.cumsum(per_layer_seconds(summary, device, precision))
    on_server = per_layer_seconds(summary, server, "fp32")
    total_server = float(on_server.sum())
    after = total_server - np.cumsum(on_server)
    power = device.power.active_w.value if device.power.active_w else None
    options = []

    def add(option: str, head: tuple[float, str], nbytes: float,
            tail: tuple[float, str], **extra: Any) -> None:
        transfer = link.transfer_s(nbytes)
        energy = None if power is None else head[0] * power + (transfer if nbytes else 0) * RADIO_W
        options.append({"option": option, "head_s": head[0], "bytes": nbytes,
                        "transfer_s": transfer, "tail_s": tail[0],
                        "end_to_end_s": head[0] + transfer + tail[0], "device_energy_j": energy,
                        "sources": {"head": head[1], "tail": tail[1]}, **extra})

    def pick(value: float | None, estimate: float) -> tuple[float, str]:
        return (value, "measured") if value is not None else (estimate, "estimated")

    from edgepipe.split.measure import CutTimes

    times = measured or CutTimes()
    whole_device = pick(times.whole_on_device_s, float(on_device[-1]))
    whole_server = pick(times.whole_on_server_s, total_server)
    # with codecs measured, the uncompressed input's and the uint8 pixels' top-1 too
    known = {} if codecs is None else {"accuracy": codecs.float_accuracy}
    add("all on device", whole_device, 0, (0.0, "none"), **known)
    add("all on server (raw uint8 input)", (0.0, "none"), input_bytes, whole_server,
        **({} if codecs is None else {"accuracy": codecs.uint8_accuracy}))
    if compressed_input_bytes is not None:
        add("all on server (zlib input)", (0.0, "none"), compressed_input_bytes, whole_server)
    left_out: set[str] = set()
    if codecs is not None:
        left_out = _codec_rows(codecs, add, device, server, whole_server)
    unplanned = []
    for point in points:
        # the estimator names layers by module path (res2.relu2), the cut points by graph
        # node (res2_relu2); an op no module owns (a residual add) may match neither
        k = next((names.index(n) for n in (point.node, point.label) if n in names), None)
        if k is None:
            unplanned.append(point.label)
            continue
        head = pick(times.heads.get(point.label), float(on_device[k]))
        tail = pick(times.tails.get(point.label), float(after[k]))
        add(f"cut {point.label} (raw float32)", head, point.bytes, tail)
        add(f"cut {point.label} (raw 8-bit)", head, point.bytes / 4, tail)
        if bottleneck and point.label in bottleneck:
            row = bottleneck[point.label]
            add(f"cut {point.label} (bottleneck)", row["head"], row["bytes"], row["tail"],
                **({"accuracy": row["accuracy"]} if row.get("accuracy") is not None else {}))
    keys = ("end_to_end_s", "bytes") + (("device_energy_j",) if power is not None else ())
    ranked = [o for o in options if o["option"] not in left_out]
    sweep = []
    for mbps in SWEEP_MBPS:
        swept = Link(mbps * 1e6, link.rtt_s)
        best = min(ranked, key=lambda o: o["head_s"] + swept.transfer_s(o["bytes"]) + o["tail_s"])
        sweep.append({"mbps": mbps, "best": best["option"], "end_to_end_s": best["head_s"]
                      + swept.transfer_s(best["bytes"]) + best["tail_s"]})
    return SplitPlan(
        label="measured and estimated" if measured else "estimated",
        device=device.name, server=server.name,
        link={"bandwidth_bps": link.bandwidth_bps, "rtt_s": link.rtt_s},
        options=options, pareto=pareto(ranked, keys), sweep=sweep,
        models={"latency": ("p50 measured by the profiling agent where a row's sources say "
                            "measured; else " if measured else "")
                + "the estimator's per-layer roofline (MCUs: cycles per MAC)",
                "estimator_error_on_host": calibration().error_summary,
                "device_energy": f"head time x device active power + transfer time x "
                                 f"{RADIO_W} W radio (assumption)",
                "bytes": "float32 or 8-bit tensor sizes; a bottleneck's measured codes",
                "bottleneck": "the split's own head.onnx (with the encoder and quantizer) and "
                              "tail.onnx (with the decoder)" if bottleneck else None,
                **({"codecs": codec_model(codecs)} if codecs is not None else {}),
                **({"unplanned_cuts": f"{', '.join(unplanned)}: no per-layer estimate is "
                                      "named after the node (an op no module owns)"}
                   if unplanned else {})},
        codecs=None if codecs is None else codecs.to_dict(),
        verdict=None if codecs is None else verdict(options))


def _codec_rows(codecs: CodecResult, add: Any, device: DeviceEntry, server: DeviceEntry,
                whole_server: tuple[float, str]) -> set[str]:
    """A row per codec setting: the device encodes (measured here, scaled to a catalog
    device), the server decodes and runs the whole model. The rows over the accuracy slack,
    left out of the front and the sweep."""
    from edgepipe.devices.catalog import get_target
    from edgepipe.split.codecs import scale_to

    here = get_target("host")
    left_out = set()
    for point in codecs.points:
        encode = scale_to(point.encode_s, device, here)
        decode, how = scale_to(point.decode_s, server, here)
        tail_source = whole_server[1] if how == whole_server[1] else "estimated"
        add(point.option, encode, point.bytes_mean, (whole_server[0] + decode, tail_source),
            accuracy=point.accuracy, bytes_p95=point.bytes_p95,
            codec={"codec": point.codec, "quality": point.quality,
                   "lossless": point.lossless, "agreement": point.agreement,
                   "within_slack": codecs.within_slack(point)})
        if not codecs.within_slack(point):
            left_out.add(point.option)
    return left_out


def codec_model(codecs: CodecResult) -> str:
    """How the codec rows were obtained, for ``models``."""
    from edgepipe.split.codecs import ACCURACY_SLACK, SCALING_NOTE

    return (f"input codecs measured on {codecs.samples} eval samples ({codecs.image['how']}): "
            f"bytes from the encoded files, top-1 through the whole model on the decoded "
            f"inputs; head: {SCALING_NOTE}; tail: the whole model plus the decode time; rows "
            f"losing more than {ACCURACY_SLACK:g} top-1 point against the uncompressed input "
            "are left out of the Pareto front and the sweep")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def verdict(options: list[JsonObject]) -> str | None:
    """One sentence: whether the best input codec within the accuracy slack (the codec rows'
    ``within_slack``) beats every cut end to end at this link; None when the plan has no
    cut or no codec row. Reads only the plan's options (a report's plan has those)."""
    from edgepipe.split.codecs import ACCURACY_SLACK

    every = [o for o in options if "codec" in o]
    coded = [o for o in every if o["codec"].get("within_slack", True)]
    cuts = [o for o in options if o["option"].startswith("cut ")]
    if not cuts or not every:
        return None
    best_cut = min(cuts, key=lambda o: o["end_to_end_s"])
    if not coded:
        reference = next((o.get("accuracy") for o in options
                          if o["option"] == "all on device"), None)
        return (f"no input codec stays within {ACCURACY_SLACK:g} top-1 point of the "
                f"uncompressed input ({_pct(reference)})")
    best = min(coded, key=lambda o: o["end_to_end_s"])
    setting = best["option"].removeprefix("all on server (").removesuffix(" input)")
    figures = f"{best['bytes']:,.0f} B, {_pct(best.get('accuracy'))}"
    against = (f"{best['end_to_end_s'] * 1e3:.3g} ms end to end against "
               f"{best_cut['end_to_end_s'] * 1e3:.3g} ms for the best cut "
               f"({best_cut['option']}, {best_cut['bytes']:,.0f} B)")
    if best["end_to_end_s"] < best_cut["end_to_end_s"]:
        energy = ""
        if best["device_energy_j"] is not None:
            lowest = min(o["device_energy_j"] for o in cuts)
            energy = (" and less device energy" if best["device_energy_j"] < lowest
                      else "; but a cut takes less device energy")
        return (f"sending the input as {setting} ({figures}) beats every cut: {against}"
                f"{energy}")
    return f"no input codec beats every cut: the best, {setting} ({figures}), takes {against}"


def compressed_bytes(arrays: np.ndarray) -> float:
    """Mean zlib size (level 9) of the samples as uint8 pixels (measured on the data)."""
    low, high = float(arrays.min()), float(arrays.max())
    pixels = np.round((arrays - low) / max(high - low, 1e-12) * 255).astype(np.uint8)
    return float(np.mean([len(zlib.compress(p.tobytes(), 9)) for p in pixels]))


def plan_model(loaded: Any, device: DeviceEntry, server: DeviceEntry, link: Link, *,
               cuts: list[str] | None = None, split_dir: Any = None,
               data: Any = None, precision: str = "fp32",
               measure_cuts: bool = False, measure_split: bool = False,
               device_reachable: bool = False, server_reachable: bool = False,
               host: Any = None, remote_python: str = "python3",
               codecs: list[str] | None = None,
               qualities: list[int] | None = None) -> SplitPlan:
    """:func:`plan` for a loaded torch model: its cuts (all, or those named in ``cuts``),
    the trained split in ``split_dir`` if given, zlib'd input bytes from the first 256
    samples of ``data`` (a DATA spec, Dataset or arrays; of Splits, the eval part).
    ``precision``: one of PRECISIONS. ``measure_cuts`` profiles each cut's raw head and
    tail, ``measure_split`` the split's own head and tail, wherever device or server is
    reachable; everything else is estimated.

    ``codecs``: the input codecs measured on the eval part of ``data`` (``["none"]`` for
    none); None: all of them when ``data`` is given and the input is an image.
    ``qualities``: the JPEG and WebP quality grid (default ``PLAN_QUALITIES``)."""
    from pathlib import Path

    check_precision(precision)
    import torch

    from edgepipe.analysis.inspect import inspect_model
    from edgepipe.split.points import cut_points, find_cut, trace

    sample = torch.from_numpy(loaded.sample_inputs(1)[0])
    traced = trace(loaded.module.eval(), sample)
    found = cut_points(traced)
    if cuts:
        wanted = {find_cut(traced, c).index for c in cuts}
        found = [p for p in found if p.index in wanted]
    reach = {"device_reachable": device_reachable, "server_reachable": server_reachable,
             "host": host, "remote_python": remote_python}
    measured = None
    if measure_cuts:
        from edgepipe.split.measure import measure_cuts as measure_raw

        measured = measure_raw(loaded, found, device=device.name, server=server.name, **reach)
    bottleneck = None
    if split_dir is not None:
        from edgepipe.split.measure import bottleneck_rows

        bottleneck = bottleneck_rows(Path(split_dir), device, server, precision,
                                     measure=measure_split, **reach)
    coded = _codecs(loaded, data, codecs, qualities)
    compressed = None if data is None else compressed_bytes(_input_array(data, loaded)[:256])
    return plan(inspect_model(loaded), found, device, server, link, int(sample.numel()),
                bottleneck=bottleneck, compressed_input_bytes=compressed,
                precision=precision, measured=measured, codecs=coded)


def _codecs(loaded: Any, data: Any, codecs: list[str] | None,
            qualities: list[int] | None) -> CodecResult | None:
    """The input codecs measured for :func:`plan_model` (None when none are asked for, or
    by default when there is no data or the input is not an image)."""
    from edgepipe.data import splits_for
    from edgepipe.model import classifier_classes
    from edgepipe.split.codecs import CODECS, measure_codecs, pixels_for, settings_for

    wanted = [c.strip().lower() for c in codecs or [] if c.strip()]
    explicit = bool(wanted) and wanted != ["none"]
    if "none" in wanted and explicit:
        raise InputError("--codec none cannot go with other codecs.",
                         hint="give --codec none alone, or the codecs to measure.",
                         reference="unknown-codec")
    settings = settings_for(wanted if explicit else list(CODECS), qualities)
    if wanted == ["none"] or (not explicit and data is None):
        return None
    if data is None:
        raise InputError("Measuring input codecs needs data: their bytes and accuracy are "
                         "measured on its eval samples.",
                         hint="give --data (e.g. builtin:digits), or --codec none.",
                         reference="codec-needs-data")
    eval_part = splits_for(data, loaded.inputs, num_classes=classifier_classes(loaded)).eval
    x = eval_part.inputs[loaded.inputs[0].name]
    if not explicit:
        try:
            pixels_for(x[:1], eval_part.preprocessing)
        except InputError:
            return None  # not an image: no codec rows unless asked for
    return measure_codecs(loaded.module.eval(), x, eval_part.labels, eval_part.preprocessing,
                          settings)


def _input_array(data: Any, loaded: Any) -> np.ndarray:
    """The model's single input, from ``data`` shaped for it (of Splits, the eval part)."""
    from edgepipe.data import Splits, as_dataset

    samples = as_dataset(data.eval if isinstance(data, Splits) else data, loaded.inputs)
    return samples.inputs[loaded.inputs[0].name]
