"""The report of a recipe run: ``report.json`` (versioned), ``report.md`` (for a pull
request) and ``report.html`` (one self-contained file, see :mod:`edgepipe.pipeline.html`).

The recommendation for a target is the fastest artifact (and, separately, the smallest)
among those whose accuracy, measured on the artifact, is within the budget of the float
model's and that fit the device; the reason says which figures decided it and whether they
were measured or estimated. Split variants are listed with their device part (the head) and
bytes per sample; they are not ranked against whole models, whose latency includes the part
a split sends to the server.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from edgepipe.pipeline.recipe import Recipe
from edgepipe.rundir import atomic_write_bytes, atomic_write_json

REPORT_SCHEMA_VERSION = 1


def build_report(recipe: Recipe, variants: list[dict[str, Any]], steps: list[dict[str, Any]],
                 *, recipe_path: str | None = None) -> dict[str, Any]:
    from edgepipe import __version__
    from edgepipe.devices.catalog import get_target

    reference = _reference(variants)
    targets = []
    for spec in recipe.targets:
        target = get_target(spec.name)
        targets.append({"name": target.name, "title": target.title, "kind": target.kind,
                        "reach": target.reach, "device": spec.host,
                        "measured": target.reach == "local" or spec.host is not None})
    recommendations = {t["name"]: recommend(variants, t["name"], reference,
                                            recipe.budget.max_drop) for t in targets}
    failed = [v["name"] for v in variants if v["status"] != "ok"]
    failed_formats = [f"{v['name']} ({f['format']})" for v in variants if v["status"] == "ok"
                      for f in v["result"].get("failed_formats", [])]
    over_budget = _hold_to_budget(variants, reference, recipe.budget.max_drop)
    return {
        "schema_version": REPORT_SCHEMA_VERSION, "kind": "edgepipe report",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "edgepipe": __version__,
        "recipe": {"path": recipe_path, "name": recipe.name, "content": recipe.model_dump()},
        "budget": {"max_drop": recipe.budget.max_drop, "unit": "top-1 points",
                   "reference": reference},
        "targets": targets, "variants": variants, "recommendations": recommendations,
        "steps": steps,
        "summary": {"variants": len(variants), "failed": failed, "over_budget": over_budget,
                    "failed_formats": failed_formats,
                    "steps_run": sum(1 for s in steps if not s["cached"]),
                    "steps_cached": sum(1 for s in steps if s["cached"]),
                    "steps_failed": sum(1 for s in steps if s["status"] != "ok")},
    }


def _hold_to_budget(variants: list[dict[str, Any]], reference: dict[str, Any] | None,
                    max_drop: float) -> list[str]:
    """Mark each built variant with its accuracy drop against the reference (top-1 points,
    its best artifact); the names of those over the budget (no artifact within it)."""
    over = []
    for variant in variants:
        if variant["status"] != "ok" or variant["method"] == "float":
            continue
        drops = []
        for artifact in variant["result"]["artifacts"]:
            accuracy = artifact.get("accuracy") or {}
            base = reference["value"] if reference and reference["metric"] == "top1" \
                else artifact.get("float_accuracy")
            if accuracy.get("metric") == "top1" and base is not None:
                drops.append(100 * (base - accuracy["value"]))
        if not drops:
            continue
        drop = min(drops)
        within = drop <= max_drop + 1e-9
        variant["budget"] = {"drop": round(drop, 4), "unit": "top-1 points",
                             "max_drop": max_drop, "within": within}
        if not within:
            over.append(variant["name"])
    return over


def _reference(variants: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The accuracy the budget counts from: the float variant's, measured on its artifact;
    without one, the float model's as a compression step measured it."""
    for variant in variants:
        if variant["method"] == "float" and variant["status"] == "ok":
            for artifact in variant["result"]["artifacts"]:
                if artifact.get("accuracy"):
                    return {"variant": variant["name"], "artifact": artifact["name"],
                            "value": artifact["accuracy"]["value"],
                            "metric": artifact["accuracy"]["metric"]}
    for variant in variants:
        if variant["status"] == "ok":
            for artifact in variant["result"]["artifacts"]:
                if artifact.get("float_accuracy") is not None:
                    return {"variant": variant["name"], "artifact": "the float model",
                            "value": artifact["float_accuracy"], "metric": "top1"}
    return None


def candidates(variants: list[dict[str, Any]], target: str) -> list[dict[str, Any]]:
    """Every whole-model artifact with its figures on ``target`` (flat rows)."""
    rows = []
    for variant in variants:
        if variant["status"] != "ok":
            continue
        for artifact in variant["result"]["artifacts"]:
            cell = artifact.get("targets", {}).get(target)
            if cell is None:
                continue
            rows.append({"variant": variant["name"], "method": variant["method"],
                         "artifact": artifact, "cell": cell})
    return rows


def recommend(variants: list[dict[str, Any]], target: str, reference: dict[str, Any] | None,
              max_drop: float) -> dict[str, Any]:
    eligible, excluded = [], []
    for row in candidates(variants, target):
        artifact, cell = row["artifact"], row["cell"]
        name = f"{row['variant']} ({artifact['format']})"
        accuracy = (artifact.get("accuracy") or {}).get("value")
        if artifact["role"] != "model":
            excluded.append({"artifact": name, "why": "a split's device part: see the split "
                             "rows (its latency leaves out the server's part)"})
        elif cell["status"] != "ok" or cell.get("latency_s") is None:
            excluded.append({"artifact": name, "why": "not profiled: " + (
                cell.get("error", {}).get("message") or "no latency")})
        elif accuracy is None or reference is None:
            excluded.append({"artifact": name, "why": "no accuracy to hold to the budget"})
        elif 100 * (reference["value"] - accuracy) > max_drop + 1e-9:
            excluded.append({"artifact": name, "why": f"loses {100 * (reference['value'] - accuracy):.2f} "
                             f"points (budget {points(max_drop)})"})
        elif not cell["fit"]["fits"]:
            excluded.append({"artifact": name, "why": f"does not fit: {cell['fit']['reason']}"})
        else:
            eligible.append(row)
    if not eligible:
        return {"fastest": None, "smallest": None, "excluded": excluded,
                "reason": "no artifact is within the accuracy budget and fits "
                          f"{target}" + (f": {excluded[0]['artifact']} {excluded[0]['why']}"
                                         if excluded else "")}
    # A lower bound ("at least this long") is not ranked ahead of a calibrated figure: the
    # artifact behind it may well be the slower one (a float model's peak-rate estimate on
    # a microcontroller against int8's calibrated one, say).
    calibrated = [r for r in eligible if not lower_bound(r["cell"])]
    ranked = calibrated or eligible
    fastest = min(ranked, key=lambda r: (r["cell"]["latency_s"], r["artifact"]["size_bytes"]))
    smallest = min(eligible, key=lambda r: (r["artifact"]["size_bytes"], r["cell"]["latency_s"]))
    assert reference is not None
    bounded = [r for r in eligible if r not in ranked]
    note = ""
    if bounded:
        note = ("; not ranked ahead of it, having only a lower-bound estimate: " + ", ".join(
            f"{r['variant']} ({r['artifact']['format']}, at least "
            f"{fmt_seconds(r['cell']['latency_s'])})" for r in bounded))
    pick = _pick(fastest, reference)
    return {"fastest": pick, "smallest": _pick(smallest, reference), "excluded": excluded,
            "reason": f"{pick['summary']}: the fastest of {len(ranked)} "
                      f"artifact{'s' if len(ranked) != 1 else ''} within "
                      f"{points(max_drop)} of "
                      f"{reference['variant']}'s accuracy that fit{'s' if len(ranked) == 1 else ''} "
                      f"{target}" + (" with a calibrated estimate or a measurement"
                                     if note else "") + note}


def _pick(row: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    artifact, cell = row["artifact"], row["cell"]
    accuracy = artifact["accuracy"]["value"]
    return {"variant": row["variant"], "artifact": artifact["name"], "path": artifact["path"],
            "format": artifact["format"], "latency_s": cell["latency_s"],
            "latency_label": cell["latency_label"], "size_bytes": artifact["size_bytes"],
            "accuracy": accuracy, "drop": reference["value"] - accuracy,
            "summary": f"{row['variant']} ({artifact['format']}, {artifact['precision']}): "
                       f"{fmt_seconds(cell['latency_s'])} {cell['latency_label']}"
                       f"{lower_bound(cell)}, "
                       f"{100 * accuracy:.2f}% top-1, {fmt_bytes(artifact['size_bytes'])}"}


def lower_bound(cell: dict[str, Any]) -> str:
    """`` (a lower bound)`` where the estimator says its figure is one (a peak MAC rate, not
    a calibrated one), so that it is not read as comparable to a calibrated estimate."""
    return " (a lower bound)" if cell.get("latency_bound") == "lower" else ""


def points(value: float) -> str:
    """``1`` -> ``1 point``, ``2.5`` -> ``2.5 points`` (top-1 points)."""
    return f"{value:g} point{'' if value == 1 else 's'}"


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"


def fmt_bytes(value: float | None) -> str:
    if value is None:
        return "—"
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{int(value)} B"


def markdown(report: dict[str, Any]) -> str:
    """The summary for a pull request: one table per target and the recommendations."""
    lines = [f"# {report['recipe']['name']}: edgepipe report", ""]
    reference = report["budget"]["reference"]
    if reference:
        lines.append(f"Accuracy budget: at most {points(report['budget']['max_drop'])} "
                     f"below {reference['variant']} ({100 * reference['value']:.2f}% top-1).")
        lines.append("")
    for target in report["targets"]:
        how = "measured" if target["measured"] else "estimated"
        lines += [f"## {target['title']} (`{target['name']}`, {how})", "",
                  "| variant | format | precision | top-1 | size | p50 latency | energy/inference | fits |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for row in candidates(report["variants"], target["name"]):
            artifact, cell = row["artifact"], row["cell"]
            accuracy = (artifact.get("accuracy") or {}).get("value")
            role = "" if artifact["role"] == "model" else f" ({artifact['role']})"
            if cell["status"] != "ok":
                figures = ["failed: " + cell["error"]["message"], "", ""]
            else:
                energy = (f"{cell['energy_j'] * 1e3:.3g} mJ {cell['energy_label']}"
                          if cell.get("energy_j") is not None else "—")
                figures = [f"{fmt_seconds(cell['latency_s'])} {cell['latency_label']}"
                           f"{lower_bound(cell)}", energy,
                           "yes" if cell["fit"]["fits"] else "no"]
            lines.append(f"| {row['variant']}{role} | {artifact['format']} | "
                         f"{artifact['precision']} | "
                         f"{'—' if accuracy is None else f'{100 * accuracy:.2f}%'} | "
                         f"{fmt_bytes(artifact['size_bytes'])} | " + " | ".join(figures) + " |")
        pick = report["recommendations"][target["name"]]
        lines += ["", f"**Recommended:** {pick['reason']}.", ""]
    over = [v for v in report["variants"] if not (v.get("budget") or {}).get("within", True)]
    if over:
        lines += ["## Over the accuracy budget", ""]
        lines += [f"- ✗ {v['name']}: loses {v['budget']['drop']:.2f} top-1 points, over "
                  f"{points(v['budget']['max_drop'])}" for v in over]
        lines.append("")
    failed = [v for v in report["variants"] if v["status"] != "ok"]
    partly = [(v, f) for v in report["variants"] if v["status"] == "ok"
              for f in v["result"].get("failed_formats", [])]
    if failed or partly:
        lines += ["## Failed variants", ""]
        lines += [f"- {v['name']}: {v['error']['message']}" for v in failed]
        lines += [f"- {v['name']} ({f['format']} only; its other formats were made): "
                  f"{f['message']}" for v, f in partly]
        lines.append("")
    return "\n".join(lines)


def write_report(report: dict[str, Any], out: Path) -> None:
    from edgepipe.pipeline.html import render_html

    atomic_write_json(out / "report.json", report)
    atomic_write_bytes(out / "report.md", markdown(report).encode())
    atomic_write_bytes(out / "report.html", render_html(report, out).encode())
