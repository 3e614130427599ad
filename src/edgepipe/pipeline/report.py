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

from edgepipe.data.preprocessing import Preprocessing
from edgepipe.documents import ABSENT
from edgepipe.pipeline.document import (
    REPORT_SCHEMA_VERSION,
    Budget,
    Candidate,
    Excluded,
    Pick,
    RecipeInfo,
    Recommendation,
    Reference,
    Report,
    ReportTarget,
    ReportVariant,
    StepRecord,
    Summary,
    VariantBudget,
    candidates,
    fmt_accuracy,
    fmt_bytes,
    fmt_seconds,
    points,
)
from edgepipe.pipeline.html import render_html
from edgepipe.pipeline.recipe import Recipe
from edgepipe.rundir import atomic_write_bytes, atomic_write_json
from edgepipe.split.plan import verdict

__all__ = ["REPORT_SCHEMA_VERSION", "build_report", "candidates", "fmt_bytes", "fmt_seconds",
           "markdown", "points", "recommend", "write_report"]


def build_report(recipe: Recipe, variants: list[dict[str, Any]] | list[ReportVariant],
                 steps: list[dict[str, Any]] | list[StepRecord], *,
                 recipe_path: str | None = None,
                 preprocessing: Preprocessing | None = None) -> Report:
    """The report of a run: ``variants`` and ``steps`` as the run recorded them (their
    JSON form or typed), the recommendations and the budget worked out."""
    from edgepipe import __version__
    from edgepipe.devices.catalog import get_target

    typed = [v if isinstance(v, ReportVariant) else ReportVariant.from_dict(v, where="variant")
             for v in variants]
    records = [s if isinstance(s, StepRecord) else StepRecord.from_dict(s, where="step")
               for s in steps]
    reference = _reference(typed)
    targets = []
    for spec in recipe.targets:
        target = get_target(spec.name)
        targets.append(ReportTarget(name=target.name, title=target.title, kind=target.kind,
                                    reach=target.reach, device=spec.remote,
                                    measured=target.reach == "local" or spec.remote is not None))
    recommendations = {t.name: recommend(typed, t.name, reference, recipe.budget.max_drop)
                       for t in targets}
    failed = [v.name for v in typed if not v.ok]
    failed_formats = [f"{v.name} ({f.format})" for v in typed if v.ok
                      for f in v.result.failed_formats]
    over_budget = _hold_to_budget(typed, reference, recipe.budget.max_drop)
    return Report(
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        edgepipe=__version__,
        recipe=RecipeInfo(path=recipe_path, name=recipe.name, content=recipe.model_dump()),
        budget=Budget(max_drop=recipe.budget.max_drop, reference=reference),
        targets=targets, variants=typed, recommendations=recommendations, steps=records,
        summary=Summary(variants=len(typed), failed=failed, over_budget=over_budget,
                        failed_formats=failed_formats,
                        steps_run=sum(1 for s in records if not s.cached),
                        steps_cached=sum(1 for s in records if s.cached),
                        steps_failed=sum(1 for s in records if s.status != "ok")),
        preprocessing=preprocessing or ABSENT)


def _hold_to_budget(variants: list[ReportVariant], reference: Reference | None,
                    max_drop: float) -> list[str]:
    """Mark each built variant with its accuracy drop against the reference (top-1 points,
    its best artifact); the names of those over the budget (no artifact within it)."""
    over = []
    for variant in variants:
        if not variant.ok or variant.method == "float":
            continue
        drops = []
        for artifact in variant.artifacts:
            accuracy = artifact.accuracy
            base = reference.value if reference and reference.metric == "top1" \
                else (None if artifact.float_accuracy is ABSENT else artifact.float_accuracy)
            if accuracy is not None and accuracy.metric == "top1" and base is not None:
                drops.append(100 * (base - accuracy.value))
        if not drops:
            continue
        drop = min(drops)
        within = drop <= max_drop + 1e-9
        variant.budget = VariantBudget(drop=round(drop, 4), max_drop=max_drop, within=within)
        if not within:
            over.append(variant.name)
    return over


def _reference(variants: list[ReportVariant]) -> Reference | None:
    """The accuracy the budget counts from: the float variant's, measured on its artifact;
    without one, the float model's as a compression step measured it."""
    for variant in variants:
        if variant.method == "float":
            for artifact in variant.artifacts:
                if artifact.accuracy:
                    return Reference(variant=variant.name, artifact=artifact.name,
                                     value=artifact.accuracy.value,
                                     metric=artifact.accuracy.metric)
    for variant in variants:
        for artifact in variant.artifacts:
            if artifact.float_accuracy not in (None, ABSENT):
                return Reference(variant=variant.name, artifact="the float model",
                                 value=artifact.float_accuracy, metric="top1")
    return None


def recommend(variants: list[ReportVariant], target: str, reference: Reference | None,
              max_drop: float) -> Recommendation:
    eligible, excluded = [], []
    for row in candidates(variants, target):
        artifact, cell = row.artifact, row.cell
        name = f"{row.variant} ({artifact.format})"
        accuracy = artifact.accuracy_value
        if artifact.role != "model":
            excluded.append(Excluded(artifact=name, why="a split's device part: see the split "
                                     "rows (its latency leaves out the server's part)"))
        elif not cell.ok or cell.latency_s in (None, ABSENT):
            excluded.append(Excluded(artifact=name, why="not profiled: " + (
                (cell.error.message if cell.error else None) or "no latency")))
        elif accuracy is None or reference is None:
            excluded.append(Excluded(artifact=name, why="no accuracy to hold to the budget"))
        elif 100 * (reference.value - accuracy) > max_drop + 1e-9:
            excluded.append(Excluded(artifact=name, why=f"loses "
                                     f"{100 * (reference.value - accuracy):.2f} "
                                     f"points (budget {points(max_drop)})"))
        elif not cell.fits:
            excluded.append(Excluded(artifact=name, why="does not fit: " + (
                cell.fit.reason if cell.fit else "no fit check")))
        else:
            eligible.append(row)
    if not eligible:
        return Recommendation(fastest=None, smallest=None, excluded=excluded,
                              reason="no artifact is within the accuracy budget and fits "
                              f"{target}" + (f": {excluded[0].artifact} {excluded[0].why}"
                                             if excluded else ""))
    # A lower bound ("at least this long") is not ranked ahead of a calibrated figure: the
    # artifact behind it may well be the slower one (a float model's peak-rate estimate on
    # a microcontroller against int8's calibrated one, say).
    calibrated = [r for r in eligible if not r.cell.lower_bound]
    ranked = calibrated or eligible
    fastest = min(ranked, key=lambda r: (r.cell.latency_s, r.artifact.size_bytes))
    smallest = min(eligible, key=lambda r: (r.artifact.size_bytes, r.cell.latency_s))
    assert reference is not None
    bounded = [r for r in eligible if r not in ranked]
    note = ""
    if bounded:
        note = ("; not ranked ahead of it, having only a lower-bound estimate: " + ", ".join(
            f"{r.variant} ({r.artifact.format}, at least "
            f"{fmt_seconds(r.cell.latency_s)})" for r in bounded))
    pick = _pick(fastest, reference)
    return Recommendation(
        fastest=pick, smallest=_pick(smallest, reference), excluded=excluded,
        reason=f"{pick.summary}: the fastest of {len(ranked)} "
               f"artifact{'s' if len(ranked) != 1 else ''} within "
               f"{points(max_drop)} of "
               f"{reference.variant}'s accuracy that fit{'s' if len(ranked) == 1 else ''} "
               f"{target}" + (" with a calibrated estimate or a measurement"
                              if note else "") + note)


def _pick(row: Candidate, reference: Reference) -> Pick:
    artifact, cell = row.artifact, row.cell
    accuracy = artifact.accuracy.value
    return Pick(variant=row.variant, artifact=artifact.name, path=artifact.path,
                format=artifact.format, latency_s=cell.latency_s,
                latency_label=cell.latency_label, size_bytes=artifact.size_bytes,
                accuracy=accuracy, drop=reference.value - accuracy,
                summary=f"{row.variant} ({artifact.format}, {artifact.precision}): "
                        f"{fmt_seconds(cell.latency_s)} {cell.latency_label}"
                        f"{cell.lower_bound}, "
                        f"{100 * accuracy:.2f}% top-1, {fmt_bytes(artifact.size_bytes)}")


def markdown(report: Report) -> str:
    """The summary for a pull request: one table per target and the recommendations."""
    lines = [f"# {report.recipe.name}: edgepipe report", ""]
    if report.data_line():
        lines += [report.data_line(), ""]
    reference = report.budget.reference
    if reference:
        lines.append(f"Accuracy budget: at most {points(report.budget.max_drop)} "
                     f"below {reference.variant} ({100 * reference.value:.2f}% top-1).")
        lines.append("")
    for target in report.targets:
        how = "measured" if target.measured else "estimated"
        lines += [f"## {target.title} (`{target.name}`, {how})", "",
                  "| variant | format | precision | top-1 | size | p50 latency | energy/inference | fits |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for row in candidates(report.variants, target.name):
            artifact, cell = row.artifact, row.cell
            role = "" if artifact.role == "model" else f" ({artifact.role})"
            if not cell.ok:
                figures = ["failed: " + cell.error.message, "", ""]
            else:
                energy = (f"{cell.energy_j * 1e3:.3g} mJ {cell.energy_label}"
                          if cell.energy_j not in (None, ABSENT) else "—")
                figures = [f"{fmt_seconds(cell.latency_s)} {cell.latency_label}"
                           f"{cell.lower_bound}", energy, "yes" if cell.fits else "no"]
            lines.append(f"| {row.variant}{role} | {artifact.format} | "
                         f"{artifact.precision} | {fmt_accuracy(artifact.accuracy_value)} | "
                         f"{fmt_bytes(artifact.size_bytes)} | " + " | ".join(figures) + " |")
        pick = report.recommendations[target.name]
        lines += ["", f"**Recommended:** {pick.reason}.", ""]
    said = [(v.name, target, verdict(found.options or [])) for v in report.variants
            for target, found in (v.plans or {}).items() if found.status == "ok"]
    if any(sentence for _, _, sentence in said):
        lines += ["## The input sent coded instead (split plan)", ""]
        lines += [f"- {name} on {target}: {sentence}." for name, target, sentence in said
                  if sentence]
        lines.append("")
    over = [v for v in report.variants if v.budget and not v.budget.within]
    if over:
        lines += ["## Over the accuracy budget", ""]
        lines += [f"- ✗ {v.name}: loses {v.budget.drop:.2f} top-1 points, over "
                  f"{points(v.budget.max_drop)}" for v in over]
        lines.append("")
    failed = [v for v in report.variants if not v.ok]
    partly = [(v, f) for v in report.variants if v.ok for f in v.result.failed_formats]
    if failed or partly:
        lines += ["## Failed variants", ""]
        lines += [f"- {v.name}: {v.error.message}" for v in failed]
        lines += [f"- {v.name} ({f.format} only; its other formats were made): "
                  f"{f.message}" for v, f in partly]
        lines.append("")
    return "\n".join(lines)


def write_report(report: Report, out: Path) -> None:
    atomic_write_json(out / "report.json", report.to_dict())
    atomic_write_bytes(out / "report.md", markdown(report).encode())
    atomic_write_bytes(out / "report.html", render_html(report, out).encode())
