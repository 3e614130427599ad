"""``report.html``: one self-contained file (inline CSS and SVG, no script, no fetch) that
opens offline in any browser.

Charts: accuracy against latency per target (the Pareto front drawn, the recommendation
ringed, estimated figures hollow), accuracy against size, energy per inference per target,
per-layer latency of the recommended artifact where it was measured, and the split
variants' bytes per sample against their accuracy, with the input sent coded instead (PNG,
JPEG, WebP: split plan's measured codec rows) as grey points, and each plan's end to end by
bandwidth with the fastest setting of each codec as a line.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from edgepipe.documents import ABSENT
from edgepipe.pipeline.document import (
    PlanCell,
    Report,
    ReportTarget,
    candidates,
    fmt_accuracy,
    fmt_bytes,
    fmt_seconds,
    points,
)
from edgepipe.pipeline.svg import (
    CHART_CSS,
    COLORS,
    Bar,
    Point,
    Series,
    bars,
    lines,
    pareto,
    scatter,
)
from edgepipe.split.plan import verdict

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0}figcaption{font-size:.85em;color:#555;max-width:560px}
.rec{background:#eef7ee;border-left:4px solid #2ca02c;padding:.5em 1em;margin:.5em 0}
.none{background:#fdf0e6;border-left:4px solid #ff7f0e}
.failed{color:#b00}.est{color:#666;font-style:italic}
""" + CHART_CSS


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>" if svg else ""



def render_html(report: Report, out: Path) -> str:
    colors = {v.name: COLORS[i % len(COLORS)] for i, v in enumerate(report.variants)}
    reference = report.budget.reference
    body = [f"<h1>{escape(report.recipe.name)}: edgepipe report</h1>",
            f"<p>edgepipe {escape(report.edgepipe)}, {escape(report.created)}. "
            f"{report.summary.steps_run} steps ran, {report.summary.steps_cached} "
            "were reused from an earlier run. Every figure says whether it was "
            "<b>measured</b> or <span class=est>estimated</span> (hollow marks in charts).</p>"]
    if report.data_line():
        body.append(f"<p>{escape(report.data_line())}</p>")
    if reference:
        body.append(f"<p>Accuracy budget: at most {points(report.budget.max_drop)} "
                    f"below {escape(reference.variant)} "
                    f"({100 * reference.value:.2f}% top-1, measured on "
                    f"{escape(reference.artifact)}).</p>")
    body.append(_summary_table(report))
    for target in report.targets:
        body.append(_target_section(report, target, colors))
    body.append(_size_section(report, colors))
    body.append(_split_section(report, colors))
    failed = [v for v in report.variants if not v.ok]
    if failed:
        body.append("<h2>Failed variants</h2><ul>" + "".join(
            f"<li class=failed><b>{escape(v.name)}</b>: {escape(v.error.message)}"
            + (f" <i>hint: {escape(v.error.hint)}</i>" if v.error.hint else "")
            + "</li>" for v in failed) + "</ul>")
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<title>{escape(report.recipe.name)} — edgepipe report</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")


def _summary_table(report: Report) -> str:
    heads = ["variant", "method", "format", "precision", "top-1", "size",
             *[t.name + (" (est.)" if not t.measured else "") for t in report.targets]]
    rows = []
    for variant in report.variants:
        if not variant.ok:
            rows.append(f"<tr><td class=l>{escape(variant.name)}</td><td class=l>"
                        f"{escape(variant.method)}</td><td class='l failed' "
                        f"colspan={len(heads) - 2}>failed: "
                        f"{escape(variant.error.message)}</td></tr>")
            continue
        for artifact in variant.artifacts:
            cells = []
            for target in report.targets:
                cell = artifact.cell(target.name)
                if cell is None:
                    cells.append("<td>on the server</td>")
                elif not cell.ok:
                    cells.append(f"<td class=failed>{escape(cell.error.message[:80])}</td>")
                else:
                    est = " class=est" if cell.latency_label != "measured" else ""
                    fit = "" if cell.fits else " (does not fit)"
                    cells.append(f"<td{est}>{'&ge; ' if cell.lower_bound else ''}"
                                 f"{fmt_seconds(cell.latency_s)}{fit}</td>")
            role = "" if artifact.role == "model" else f" ({artifact.role})"
            rows.append(
                f"<tr><td class=l>{escape(variant.name)}{role}</td><td class=l>"
                f"{escape(variant.method)}</td><td class=l>{escape(artifact.format)}</td>"
                f"<td class=l>{escape(artifact.precision)}</td>"
                f"<td>{fmt_accuracy(artifact.accuracy_value)}</td>"
                f"<td>{fmt_bytes(artifact.size_bytes)}</td>{''.join(cells)}</tr>")
    return ("<h2>Summary</h2><p>p50 latency per target; accuracy measured on each artifact in "
            "its own runtime.</p><table><tr>" + "".join(
                f"<th{' class=l' if i < 4 else ''}>{escape(h)}</th>"
                for i, h in enumerate(heads)) + "</tr>" + "".join(rows) + "</table>")


def _target_section(report: Report, target: ReportTarget, colors: dict[str, str]) -> str:
    pick = report.recommendations[target.name]
    fastest = pick.fastest
    marks, energy = [], []
    for row in candidates(report.variants, target.name):
        artifact, cell = row.artifact, row.cell
        accuracy = artifact.accuracy_value
        if not cell.ok or cell.latency_s in (None, ABSENT) or accuracy is None \
                or artifact.role != "model":
            continue
        label = f"{row.variant} {artifact.format}"
        marks.append(Point(x=cell.latency_s, y=100 * accuracy, label=label,
                           color=colors[row.variant],
                           hollow=cell.latency_label != "measured",
                           ring=bool(fastest and fastest.path == artifact.path),
                           tip=f"{label}: {fmt_seconds(cell.latency_s)} "
                               f"{cell.latency_label}, {100 * accuracy:.2f}%"))
        energy.append(Bar(label=label, value=cell.energy_j or None, color=colors[row.variant],
                          hollow=cell.energy_label != "measured"))
    how = "measured here" if target.measured else "estimated (no device reached)"
    charts = [_figure(scatter(marks, x_label="p50 latency (log scale)",
                              y_label="top-1 accuracy (%)", x_format=fmt_seconds,
                              y_format=lambda v: f"{v:.1f}", log_x=True,
                              title=f"accuracy vs latency on {target.name}"),
                      "Dashed: the Pareto front. Ringed: the recommendation. Hollow: "
                      "estimated latency."),
              _figure(bars(energy, title=f"energy per inference on {target.name}",
                           value_format=lambda v: f"{v * 1e3:.3g} mJ"),
                      "Hollow: estimated from the device's power model (named in "
                      "report.json); filled: read from a sensor.")]
    layers = ""
    if fastest:
        chosen = next((r.cell for r in candidates(report.variants, target.name)
                       if r.artifact.path == fastest.path), None)
        if chosen and not chosen.layers and chosen.layers_note:
            layers = (f"<p class=est>No per-layer times for {escape(fastest.artifact)} on "
                      f"{escape(target.name)}: {escape(chosen.layers_note)}.</p>")
        if chosen and chosen.layers:
            label = chosen.layers_label or chosen.latency_label
            layers = _figure(bars([Bar(label=f"{r.name}", value=r.seconds,
                                       color=colors[fastest.variant],
                                       hollow=label != "measured")
                                   for r in chosen.layers],
                                  title=f"slowest layers of {fastest.artifact}",
                                  value_format=fmt_seconds),
                             f"Per-layer time of the recommended artifact on "
                             f"{target.name} ({label}"
                             + (f": {chosen.layers_note}" if label != "measured"
                                and chosen.layers_note else "") + ").")
    box = (f"<div class=rec><b>Recommended for {escape(target.title)}:</b> "
           f"{escape(pick.reason)}."
           + (f" Smallest within the budget: {escape(pick.smallest.summary)}."
              if pick.smallest and pick.smallest.path != fastest.path else "")
           + "</div>" if fastest else
           f"<div class='rec none'><b>No recommendation for {escape(target.title)}:</b> "
           f"{escape(pick.reason)}.</div>")
    excluded = "".join(f"<li>{escape(e.artifact)}: {escape(e.why)}</li>"
                       for e in pick.excluded)
    return (f"<h2>{escape(target.title)} <small>({escape(target.name)}, {how})</small>"
            f"</h2>{box}<div class=charts>{''.join(charts)}{layers}</div>"
            + (f"<details><summary>Not recommended</summary><ul>{excluded}</ul></details>"
               if excluded else ""))


def _size_section(report: Report, colors: dict[str, str]) -> str:
    marks = []
    for variant in report.variants:
        for artifact in variant.artifacts:
            accuracy = artifact.accuracy_value
            if accuracy is None or artifact.role != "model":
                continue
            label = f"{variant.name} {artifact.format}"
            marks.append(Point(x=artifact.size_bytes, y=100 * accuracy, label=label,
                               color=colors[variant.name],
                               tip=f"{label}: {fmt_bytes(artifact.size_bytes)}, "
                                   f"{100 * accuracy:.2f}%"))
    return ("<h2>Accuracy and size</h2><div class=charts>" + _figure(
        scatter(marks, x_label="artifact size on disk (log scale)",
                y_label="top-1 accuracy (%)", x_format=fmt_bytes,
                y_format=lambda v: f"{v:.1f}", log_x=True, title="accuracy vs size"),
        "Sizes are the artifacts' files on disk (measured); dashed: the Pareto front.")
        + "</div>")


def _split_section(report: Report, colors: dict[str, str]) -> str:
    rows, marks = [], []
    for variant in report.variants:
        if variant.method != "split":
            continue
        head = next((a for a in variant.artifacts if a.role == "head"), None)
        if head is None:
            continue
        split = head.split
        accuracy = head.accuracy_value
        sent = (f"{split.bytes_per_sample:,.1f} (bitstream, mean)" if split.coding == "entropy"
                else f"{split.bytes_per_sample:,.0f}")
        cells = "".join(
            f"<td{' class=est' if c.latency_label != 'measured' else ''}>"
            f"{fmt_seconds(c.latency_s)}</td>"
            for c in (head.targets or {}).values())
        rows.append(f"<tr><td class=l>{escape(variant.name)}</td><td class=l>"
                    f"{escape(str(split.at))}</td><td>{split.bottleneck}</td>"
                    f"<td>{sent}</td><td>{split.input_bytes:,}</td>"
                    f"<td>{fmt_accuracy(accuracy)}</td>{cells}</tr>")
        if accuracy is not None:
            marks.append(Point(x=split.bytes_per_sample, y=100 * accuracy, label=variant.name,
                               color=colors[variant.name],
                               tip=f"{variant.name}: {split.bytes_per_sample:,.1f} "
                                   f"B/sample ({split.coding})"))
    if not rows:
        return ""
    marks += _codec_marks(report)
    plans = []
    for variant in report.variants:
        for target, found in (variant.plans or {}).items():
            if found.status != "ok":
                plans.append(f"<p class=failed>plan of {escape(variant.name)} on "
                             f"{escape(target)}: {escape(found.error.message)}</p>")
                continue
            said = verdict(found.options or [])
            plans.append(_figure(_plan_chart(variant.name, found),
                                 f"{target} -> {found.server}: end to end by the link's "
                                 f"bandwidth at a {found.link['rtt_s'] * 1e3:g} ms round "
                                 "trip (split plan's link model; the dotted line is the "
                                 "recipe's bandwidth; head and tail "
                                 + _sources(found) + "; input codecs: the best of each "
                                 "within the accuracy slack, encode time on the device)."
                                 + (f" At the recipe's link, {said}." if said else "")))
    heads = "".join(f"<th>{escape(t.name)} head</th>" for t in report.targets)
    return ("<h2>Split variants</h2><p>The head runs on the device, the tail on a server; "
            "bytes per sample are what crosses the link (measured on the codes). Use "
            "<code>edgepipe split plan MODEL --split OUT/variants/NAME</code> for the "
            "end-to-end plan over a link.</p><table><tr><th class=l>variant</th>"
            "<th class=l>cut</th><th>channels</th><th>bytes/sample</th><th>input bytes</th>"
            f"<th>top-1 (end to end)</th>{heads}</tr>{''.join(rows)}</table>"
            "<div class=charts>" + _figure(
                scatter(marks, x_label="bytes per sample on the link (log scale)",
                        y_label="top-1 accuracy (%)", x_format=lambda v: f"{v:g} B",
                        y_format=lambda v: f"{v:.1f}", log_x=True,
                        title="split: accuracy vs bytes on the link"),
                "End-to-end accuracy of head and tail in their runtimes. Grey: the input "
                "sent instead (raw uint8, PNG, JPEG, WebP; the whole model on the server), "
                "bytes and accuracy measured on the decoded eval samples; labelled where "
                "no other input codec has fewer bytes and as much accuracy.") + "</div>"
            + ("<h3>Where to run it: the split plan</h3><div class=charts>" + "".join(plans)
               + "</div>" if plans else ""))


PLAN_COLORS = {"all on device": "#1f77b4", "all on server": "#ff7f0e",
               "raw 8-bit": "#7f7f7f", "bottleneck": "#2ca02c"}
CODEC_COLORS = {"png": "#8c564b", "jpeg": "#e377c2", "webp": "#17becf"}
INPUT_COLOR = "#999999"


def _codec_marks(report: Report) -> list[Point]:
    """The input sent instead of a split (raw uint8 and each codec setting measured by the
    first split plan that has them): bytes against top-1, measured."""
    options = next((found.options for variant in report.variants
                    for found in (variant.plans or {}).values()
                    if found.status == "ok" and any("codec" in o for o in found.options or [])),
                   [])
    coded = [o for o in options if o.get("accuracy") is not None and o["bytes"]
             and ("codec" in o or o["option"] == "all on server (raw uint8 input)")]
    front = {p.tip for p in pareto([Point(x=o["bytes"], y=o["accuracy"], label="", color="",
                                          tip=o["option"]) for o in coded])}
    marks = []
    for o in coded:
        name = o["option"].removeprefix("all on server (").removesuffix(" input)")
        marks.append(Point(x=o["bytes"], y=100 * o["accuracy"],
                           label=name if o["option"] in front else "", color=INPUT_COLOR,
                           tip=f"input as {name}: {o['bytes']:,.0f} B mean"
                               + (f" (p95 {o['bytes_p95']:,.0f})" if "bytes_p95" in o else "")
                               + f", {100 * o['accuracy']:.2f}% top-1, measured"))
    return marks


def _plan_chart(name: str, found: PlanCell) -> str:
    """End to end against bandwidth for each way to run it, from the plan's own figures."""
    rtt = found.link["rtt_s"]
    grid = [10 ** (e / 8) for e in range(-8, 25)]  # 0.1 to 1000 Mbps
    series = []
    options = found.options or []
    best_coded = {}  # per codec, the fastest setting within the accuracy slack
    for option in options:
        codec = option.get("codec")
        if codec and codec.get("within_slack", True) and (
                codec["codec"] not in best_coded
                or option["end_to_end_s"] < best_coded[codec["codec"]]["end_to_end_s"]):
            best_coded[codec["codec"]] = option
    for option in options:
        label = option["option"]
        if "float32" in label or label == "all on server (raw uint8 input)" and any(
                o["option"] == "all on server (zlib input)" for o in options):
            continue
        if "codec" in option and best_coded.get(option["codec"]["codec"]) is not option:
            continue
        key = next((k for k in PLAN_COLORS if k in label), None)
        line = [(mbps, option["head_s"] + option["tail_s"] + (
            option["bytes"] * 8 / (mbps * 1e6) + rtt if option["bytes"] else 0.0))
            for mbps in grid]
        color = (CODEC_COLORS.get(option["codec"]["codec"], "#9467bd") if "codec" in option
                 else PLAN_COLORS.get(key or "", "#9467bd"))
        series.append(Series(label=label, color=color, points=line))
    return lines(series, x_label="link bandwidth, Mbps (log scale)",
                 y_label="end to end (log scale)", x_format=lambda v: f"{v:g}",
                 y_format=fmt_seconds, title=f"{name} on {found.device}",
                 marker_x=found.link["bandwidth_bps"] / 1e6)


def _sources(found: PlanCell) -> str:
    row = next((o for o in found.options if o["option"].endswith("(bottleneck)")), None)
    if row is None:
        return "estimated"
    return f"{row['sources']['head']}/{row['sources']['tail']}"
