"""Read the output of TFLite's ``benchmark_model`` into edgepipe's latency/memory blocks.

The tool prints (with or without an ``INFO:`` prefix, depending on the build and logcat):

- ``count=N first=.. curr=.. min=.. max=.. avg=.. std=..`` and, in newer builds,
  ``p5=.. median=.. p95=..`` (microseconds): once for the warm-up runs, once for the
  regular runs (the one whose count is the larger, and the last);
- ``Inference timings in us: Init: .., First inference: .., Warmup (avg): .., Inference
  (avg): ..``;
- ``Memory footprint delta from the start of the tool (MB): init=.. overall=..`` (older
  builds: ``Peak memory footprint (MB): init=.. overall=..``) and sometimes ``Overall peak
  memory footprint (MB) via periodic monitoring: ..``;
- with ``--enable_op_profiling=true``, tables of ``[node type] [start] [first] [avg ms] [%]
  [cdf%] [mem KB] [times called] [Name]``; the "Run Order" table of the regular runs gives
  the per-layer times.

It prints no per-run times, so the profile's raw times and p90/p99 are absent and say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

NUMBER = r"([-+\d.eE]+)"
COUNT_LINE = re.compile(r"count=(\d+)((?:\s+\w+=" + NUMBER + r")+)")
TIMINGS = re.compile(r"Inference timings in us: Init: " + NUMBER + r", First inference: "
                     + NUMBER + r", Warmup \(avg\): " + NUMBER + r", Inference \(avg\): "
                     + NUMBER)
FOOTPRINT = re.compile(r"(?:Memory footprint delta from the start of the tool|Peak memory "
                       r"footprint) \(MB\): init=" + NUMBER + r" overall=" + NUMBER)
PEAK = re.compile(r"Overall peak memory footprint \(MB\) via periodic monitoring: " + NUMBER)


def _strip(line: str) -> str:
    return re.sub(r"^(?:\S+\s+tflite\s*:|INFO:|I tflite\s*:)\s*", "", line.strip())


@dataclass(frozen=True)
class BenchmarkFigures:
    """One run's figures in seconds and bytes, as the Profile document writes them:
    ``warmup`` (mean_s, count), ``steady`` (count, mean_s, std_s, min/max and the
    percentiles the build prints), ``memory`` (footprint deltas, peak) and ``layers`` (the
    op profile's rows, or None without --enable_op_profiling)."""

    load_s: float
    first_inference_s: float
    warmup: dict[str, Any]
    steady: dict[str, Any]
    memory: dict[str, int]
    layers: dict[str, Any] | None


def parse(text: str) -> BenchmarkFigures:
    """The figures of one benchmark_model run (seconds and bytes); raises ValueError when
    the output has no regular-run statistics (the tool failed)."""
    lines = [_strip(line) for line in text.replace("\r", "").splitlines()]
    runs = []
    for line in lines:
        match = COUNT_LINE.search(line)
        if match:
            fields = dict(re.findall(r"(\w+)=" + NUMBER, match.group(0)))
            runs.append({k: float(v) for k, v in fields.items()})
    timings = next((TIMINGS.search(line) for line in lines if TIMINGS.search(line)), None)
    if not runs or timings is None:
        raise ValueError("no 'Inference timings' and 'count=' lines: benchmark_model did not "
                         "finish a run")
    regular = runs[-1]
    steady: dict[str, Any] = {"count": int(regular["count"]), "mean_s": regular["avg"] / 1e6,
                              "std_s": regular.get("std", 0.0) / 1e6}
    for ours, theirs in (("min_s", "min"), ("max_s", "max"), ("p5_s", "p5"),
                         ("p50_s", "median"), ("p95_s", "p95")):
        if theirs in regular:
            steady[ours] = regular[theirs] / 1e6
    steady["raw_s"] = None
    steady["note"] = "benchmark_model prints no per-run times; p90 and p99 are not available"
    memory: dict[str, int] = {}
    for line in lines:
        if (found := FOOTPRINT.search(line)):
            memory["init_delta_bytes"] = int(float(found.group(1)) * 2**20)
            memory["overall_delta_bytes"] = int(float(found.group(2)) * 2**20)
        if (found := PEAK.search(line)):
            memory["peak_bytes"] = int(float(found.group(1)) * 2**20)
    return BenchmarkFigures(
        load_s=float(timings.group(1)) / 1e6,
        first_inference_s=float(timings.group(2)) / 1e6,
        warmup={"mean_s": float(timings.group(3)) / 1e6,
                "count": int(runs[0]["count"]) if len(runs) > 1 else None},
        steady=steady, memory=memory, layers=parse_op_profile(lines))


def parse_op_profile(lines: list[str]) -> dict[str, Any] | None:
    """The "Run Order" table of the regular runs' op profile, slowest first."""
    start = next((i for i, line in enumerate(lines)
                  if "Operator-wise Profiling Info for Regular Benchmark Runs" in line), None)
    if start is None:
        return None
    rows = []
    in_table = False
    for line in lines[start + 1:]:
        if "Run Order" in line:
            in_table = True
            continue
        if in_table and "[node type]" in line:
            continue
        if in_table and (not line or line.startswith("=")):
            if rows:
                break
            continue
        if in_table:
            cells = [cell.strip() for cell in re.split(r"\t+|\s{2,}", line) if cell.strip()]
            if len(cells) >= 9:
                rows.append({"op_type": cells[0], "mean_us": float(cells[3]) * 1e3,
                             "median_us": None, "share": float(cells[4].rstrip("%")) / 100,
                             "calls": int(float(cells[7])), "name": " ".join(cells[8:])})
    rows.sort(key=lambda r: -r["mean_us"])
    return {"rows": rows, "source": "benchmark_model --enable_op_profiling (average per op)"}
