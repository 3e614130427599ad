"""The run's measuring steps: each artifact profiled on each target (measured where a device
is reachable, estimated from the catalog otherwise, refused when it cannot run there), and
each split variant planned on each target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgepipe import formats
from edgepipe.errors import EdgepipeError
from edgepipe.pipeline.context import Context, run_step
from edgepipe.pipeline.recipe import TargetSpec, Variant


def profile_step(context: Context, variant: Variant, artifact: dict[str, Any],
                  target: TargetSpec) -> dict[str, Any]:
    settings = context.recipe.profile
    relative = f"profiles/{variant.name}.{artifact['format']}.{artifact['role']}.{target.name}.json"
    refused = _refusal(artifact, target)  # a format the target cannot run: no profile file
    record = run_step(context, f"profile.{variant.name}.{artifact['format']}.{artifact['role']}."
                   f"{target.name}", "profile",
                   f"{variant.name} {artifact['format']} on {target.name}",
                   {"artifact": artifact["sha256"], "target": target.model_dump(),
                    "settings": settings.model_dump()},
                   (lambda: _not_run(refused)) if refused else
                   (lambda: _profile(context, artifact, target, relative)),
                   [] if refused else [relative])
    if record["status"] != "ok":
        return {"status": "failed", "error": record["error"]}
    return {"status": "ok", "cached": record["cached"], **record["result"]}


def _refusal(artifact: dict[str, Any], target: TargetSpec) -> EdgepipeError | None:
    """Why ``target`` cannot run the artifact's format, where it would be estimated (no
    host, not this machine): the estimator refuses such a pair (``format-not-on-target``)."""
    from edgepipe.devices.catalog import get_target
    from edgepipe.devices.runtimes import check_runs_there

    try:
        entry = get_target(target.name)
    except EdgepipeError:
        return None  # the profile step reports it
    if target.remote is not None or entry.reach == "local":
        return None
    try:
        check_runs_there(entry, formats.get(artifact["format"]).runtime,
                         Path(artifact["path"]).name)
    except EdgepipeError as exc:
        return exc
    return None


def _not_run(refused: EdgepipeError) -> dict[str, Any]:
    """A pair the target cannot run: no estimate, and it does not fit, with the reason."""
    return {"mode": "not-run", "latency_s": None, "latency_label": "unavailable",
            "fit": {"fits": False, "label": "measured", "reason": refused.message}}


def _profile(context: Context, artifact: dict[str, Any], target: TargetSpec,
             relative: str) -> dict[str, Any]:
    from edgepipe.profiling.profile import profile
    from edgepipe.profiling.runner import LatencySettings
    from edgepipe.profiling.target import resolve_target
    from edgepipe.rundir import atomic_write_json

    settings = context.recipe.profile
    latency = LatencySettings(runs=settings.runs, duration_s=settings.duration,
                              warmup_runs=settings.warmup, warmup_s=0.2,
                              threads=settings.threads, per_layer=settings.per_layer,
                              energy=settings.energy, energy_idle_s=1.0, energy_busy_s=1.0)
    resolved = resolve_target(target.name, device=target.remote)
    path = context.out / artifact["path"]
    document = profile(path, resolved, latency, data=context.recipe.data.spec,
                       normalize=context.recipe.data.normalize).to_dict()
    (context.out / relative).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(context.out / relative, document)
    found = resolved.entry
    summary = summarize_profile(document)
    if not summary["layers"]:
        summary.update(_estimated_layers(path, found, document))
    summary["fit"] = _fit(path, artifact, found, document)
    summary["profile"] = relative
    return summary


def summarize_profile(document: dict[str, Any]) -> dict[str, Any]:
    """The figures the report needs from a Profile document, with their labels."""
    latency = document.get("latency") or {}
    energy = document.get("energy") or {}
    memory = document.get("memory") or {}
    joules = energy.get("joules_per_inference")
    if isinstance(joules, dict):
        joules = joules.get("value")
    peak_rss = memory.get("peak_rss_bytes")
    peak_activation = memory.get("peak_activation_bytes") or {}
    layers = document.get("layers") or {}
    top = [{"name": row.get("name"), "op": row.get("op_type"), "seconds": row["mean_us"] / 1e6}
           for row in layers.get("rows") or [] if row.get("mean_us") is not None]
    top.sort(key=lambda r: -r["seconds"])
    return {
        "mode": document.get("mode"),
        "latency_s": (latency.get("steady") or {}).get("p50_s"),
        "latency_label": latency.get("label"),
        "latency_model": latency.get("model"),
        "latency_bound": latency.get("bound"),  # "lower": the latency is at least this
        "energy_j": joules, "energy_label": energy.get("label"),
        "energy_how": energy.get("sensor") or energy.get("model") or energy.get("why"),
        "size_bytes": memory.get("artifact_size_bytes"),
        "peak_rss_bytes": peak_rss.get("value") if isinstance(peak_rss, dict) else peak_rss,
        "peak_activation_bytes": peak_activation.get("value"),
        "layers": top[:15], "layers_label": "measured" if top else None,
        "layers_note": None if top else (layers.get("note") or (
            "per-layer times are measured on a reached device only")),
    }


def _estimated_layers(path: Path, target: Any, document: dict[str, Any]) -> dict[str, Any]:
    """The estimator's per-layer times where the runtime gave none (a device not reached,
    or LiteRT's interpreter, which has no per-op timer), labelled so."""
    from edgepipe.devices.estimator import per_layer_seconds
    from edgepipe.profiling.graph import summary_for

    graph, source = summary_for(path)
    if graph is None:
        return {}
    precision = (document.get("artifact") or {}).get("precision") or "fp32"
    try:
        seconds = per_layer_seconds(graph, target, precision)
    except EdgepipeError:
        return {}
    rows = sorted(({"name": layer.name, "op": layer.op_type, "seconds": float(value)}
                   for layer, value in zip(graph.layers, seconds, strict=True)),
                  key=lambda r: -r["seconds"])
    return {"layers": rows[:15], "layers_label": "estimated",
            "layers_note": f"the estimator's per-layer times ({source})"}


def _fit(path: Path, artifact: dict[str, Any], target: Any,
         document: dict[str, Any]) -> dict[str, Any]:
    """Whether the artifact fits the device: TFLite Micro's own check on a microcontroller,
    the artifact and its activations against the device's RAM elsewhere."""
    if target.kind == "mcu":
        if artifact["format"] != "tflite":
            return {"fits": False, "label": "measured",
                    "reason": "a microcontroller runs .tflite files (TFLite Micro)"}
        from edgepipe.devices.fit import check_fit

        checked = check_fit(path, target)
        return {"fits": checked.fits, "label": "measured",
                "reason": "; ".join(checked.reasons) or (
                    f"flash {checked.flash.need_bytes:,} B, SRAM "
                    f"{checked.sram.need_bytes:,} B (TFLite Micro arena measured)")}
    ram = target.memory.ram_bytes.value if target.memory and target.memory.ram_bytes else None
    memory = document.get("memory") or {}
    activation = (memory.get("peak_activation_bytes") or {}).get("value") or 0
    need = int(artifact["size_bytes"]) + int(activation)
    if ram is None:
        return {"fits": True, "label": "estimated", "reason": "no RAM figure for the device"}
    return {"fits": need <= ram, "label": "estimated",
            "reason": f"{need:,} B of weights and activations against {int(ram):,} B of RAM"}


def plan_step(context: Context, variant: Variant, built: dict[str, Any], target: TargetSpec,
               sources: dict[str, Any]) -> dict[str, Any]:
    """``split plan`` for the split variant with ``target`` as the device: every option's
    head, bytes, transfer and tail at the variant's link, and the sweep over bandwidths."""
    server = variant.server or "host"
    record = run_step(context, f"plan.{variant.name}.{target.name}", "plan",
                   f"{variant.name}: {target.name} -> {server}",
                   {"artifacts": sorted(a["sha256"] for a in built["artifacts"]),
                    "target": target.model_dump(), "server": server, "link": variant.link,
                    "at": variant.at, "sources": sources},
                   lambda: _plan(context, variant, built, target, server), [])
    if record["status"] != "ok":
        return {"status": "failed", "error": record["error"]}
    return {"status": "ok", "cached": record["cached"], **record["result"]}


def _plan(context: Context, variant: Variant, built: dict[str, Any], target: TargetSpec,
          server_name: str) -> dict[str, Any]:
    from edgepipe.devices.catalog import get_target
    from edgepipe.split.plan import Link, parse_duration, parse_rate, plan_model

    loaded = context.loaded()
    device, server = get_target(target.name), get_target(server_name)
    result = plan_model(
        loaded, device, server, Link(parse_rate(variant.link[0]), parse_duration(variant.link[1])),
        cuts=[variant.at or ""], split_dir=context.out / built["folder"],
        data=context.splits(), measure_split=True,
        device_reachable=target.name == "host" and target.remote is None,
        server_reachable=server.reach == "local")
    sources = {source for option in result.options
               for source in option["sources"].values() if source != "none"}
    label = " and ".join(sorted(sources)) or result.label  # e.g. "estimated and measured"
    return {"device": result.device, "server": result.server, "link": result.link,
            "label": label, "options": result.options, "pareto": result.pareto,
            "sweep": result.sweep, "models": result.models}
