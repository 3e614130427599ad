"""``edgepipe split MODEL --at LAYER --bottleneck C --data D -o OUT`` and ``split points``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from edgepipe.cli import common
from edgepipe.cli.common import NO_OPTIONS, ModelLoading, command, format_bytes, takes_model
from edgepipe.cli.export_cmd import Format
from edgepipe.cli.help import HelpCommand, HelpGroup
from edgepipe.cli.targets_cmd import CatalogOption


class DefaultToMake(HelpGroup):
    """``split MODEL ...`` means ``split make MODEL ...``; ``split points`` and ``split plan``
    stay themselves."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["make", *args]
        return super().parse_args(ctx, args)


split_app = typer.Typer(cls=DefaultToMake, no_args_is_help=True, help=(
    "Split a model into a device head and a server tail with a trained bottleneck "
    "(`edgepipe split MODEL --at LAYER --bottleneck C --data D -o OUT`), or list where it "
    "can be cut (`edgepipe split points MODEL`)."))


@split_app.command("points", cls=HelpCommand)
@takes_model
def points(
    model: common.TorchModelArgument,
    loading: ModelLoading = NO_OPTIONS,
    json_output: common.JsonOption = False,
) -> None:
    """Every place the model can be cut so that a single tensor crosses, with its shape
    and bytes."""
    config = {"model": model, **loading.to_config()}
    with command("split points", json_output, config) as output:
        import torch

        from edgepipe.errors import UnsupportedError
        from edgepipe.split.points import cut_points, trace

        loaded = loading.load(model)
        if loaded.module is None or len(loaded.inputs) != 1:
            raise UnsupportedError("Cut points are found in torch models with one input.",
                                   hint="give torchvision:NAME, builtin:..., or a factory.",
                                   reference="split-needs-torch")
        sample = torch.from_numpy(loaded.sample_inputs(1)[0])
        found = [p.to_dict() for p in cut_points(trace(loaded.module.eval(), sample))]
        input_bytes = int(sample.numel() * sample.element_size())
        output.result({"model": model, "input_bytes": input_bytes, "points": found},
                      render=lambda console: _render_points(console, found, input_bytes))


def _render_points(console: Console, found: list[dict[str, Any]], input_bytes: int) -> None:
    table = Table(show_edge=False, title=f"cut points (the input is {format_bytes(input_bytes)} "
                  "as float32)", title_justify="left")
    for column in ("cut (--at)", "node", "tensor", "bytes (float32)", "head params"):
        table.add_column(column)
    for p in found:
        table.add_row(p["label"], p["node"], "x".join(map(str, p["shape"])),
                      format_bytes(p["bytes"]), f"{p['head_params']:,}")
    console.print(table)


ENTROPY = "Entropy coding (--entropy)"  # a --help panel


@split_app.command("make", cls=HelpCommand)
@takes_model
def make(
    model: common.TorchModelArgument,
    at: Annotated[str, typer.Option(help="Cut point (`edgepipe split points MODEL`).")],
    bottleneck: Annotated[int, typer.Option(help="Channels of the bottleneck.")],
    out: common.OutOption,
    data: common.DataOption = None,
    bits: Annotated[int, typer.Option(help="Bits per code sent (1-8).")] = 8,
    stride: Annotated[int, typer.Option(help="Encoder stride (2 halves height and width).")] = 1,
    formats: Annotated[list[Format] | None, typer.Option(
        "--format", "-f", help="Export formats of head and tail (repeat; default onnx).")
    ] = None,
    int8_head: Annotated[bool, typer.Option(
        "--int8-head", help="Also write head.int8.tflite (int8, for MCUs and phones), checked "
        "end to end with the tail.")] = False,
    entropy: Annotated[bool, typer.Option(
        "--entropy", help="Entropy-code the codes: a learned density per channel trained "
        "with a rate term, and a range coder writing each sample's bitstream "
        "(entropy.npz holds the tables).", rich_help_panel=ENTROPY)] = False,
    rate_weight: Annotated[float | None, typer.Option(
        rich_help_panel=ENTROPY,
        help="The rate term's weight per bit (lambda; default 1e-4, larger sends fewer bytes)."
    )] = None,
    target_bytes: Annotated[float | None, typer.Option(
        rich_help_panel=ENTROPY,
        help="Bytes per sample to stay under (the training steers the rate weight towards it; "
        "it may end below).")] = None,
    distill_epochs: Annotated[int, typer.Option(help="Head-distillation epochs (at most).")] = 30,
    finetune_epochs: Annotated[int, typer.Option(help="Fine-tuning epochs (at most).")] = 20,
    loading: ModelLoading = NO_OPTIONS,
    normalize: common.NormalizeOption = None,
    seed: common.SeedOption = 0,
    json_output: common.JsonOption = False,
) -> None:
    """Cut MODEL at a layer, train an encoder/quantizer/decoder there in two stages (head
    distillation, then fine-tuning with distillation), export head and tail to ONNX, and
    measure accuracy and bytes per sample."""
    config = {"model": model, "at": at, "bottleneck": bottleneck, "bits": bits,
              "stride": stride, "data": data, "normalize": normalize, "out": out,
              "seed": seed,
              "distill_epochs": distill_epochs, "finetune_epochs": finetune_epochs,
              "formats": [f.value for f in formats or []], "int8_head": int8_head,
              "entropy": entropy, "rate_weight": rate_weight, "target_bytes": target_bytes,
              **loading.to_config()}
    with command("split", json_output, config) as output:
        from edgepipe.cli.common import progress_bars
        from edgepipe.split.api import SplitConfig, split_model
        from edgepipe.split.train import SplitTraining

        chosen = tuple(dict.fromkeys(f.value for f in formats or [])) or ("onnx",)
        settings = SplitConfig(at=at, bottleneck=bottleneck, bits=bits, stride=stride,
                               formats=chosen, int8_head=int8_head, entropy=entropy,
                               rate_weight=rate_weight, target_bytes=target_bytes,
                               training=SplitTraining(distill_epochs=distill_epochs,
                                                      finetune_epochs=finetune_epochs,
                                                      seed=seed))
        loaded = loading.load(model)
        with progress_bars() as progress:
            result = split_model(loaded, settings, data, out, normalize=normalize,
                                 progress=progress).to_dict()
        output.result(result, render=lambda console: _render_split(console, result, out))


def _render_split(console: Console, r: dict[str, Any], out: Any) -> None:
    a, b = r["accuracy"], r["bytes_per_sample"]

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.2f}%"

    console.print(f"cut at {r['config']['at']} ({'x'.join(map(str, r['cut']['shape']))}), "
                  f"bottleneck {r['config']['bottleneck']} channels x {r['config']['bits']} bits")
    runtimes = ", ".join(pct(a["split_" + check["runtime"]]) + " in " + check["runtime"]
                         for check in r["end_to_end"].values())
    console.print(f"accuracy (eval, {a['samples']} samples): original {pct(a['original'])}, "
                  f"split {pct(a['split_torch'])} in torch; end to end (head -> 8-bit codes "
                  f"-> tail): {runtimes}")
    for runtime, outputs in (a.get("vs_original") or {}).items():
        console.print(f"{runtime.removeprefix('split_')} vs the original model (top-1 does not "
                      "apply): " + "; ".join(
                          f"{o['name']} SQNR {o['sqnr_db']} dB, cosine {o['cosine_mean']:.4f}, "
                          f"max |diff| {o['max_abs_diff']:.3g}" for o in outputs))
    console.print(f"bytes per sample: {b['packed_bytes']:,} (zlib {b['zlib_bytes_mean']:.0f} "
                  f"mean) vs input {b['input_uint8']:,} as uint8 ({100 * b['vs_input']:.1f}%) "
                  f"and the raw float tensor at the cut {b['raw_float_at_cut']:,} "
                  f"({100 * b['vs_raw_float']:.1f}%)")
    if r.get("entropy"):
        e, rate = r["entropy"], r["entropy"].get("rate") or {}
        console.print(f"entropy-coded: {e['bitstream_bytes_mean']:.1f} bytes per sample mean "
                      f"(p95 {e['bitstream_bytes_p95']:.0f}, {e['header_bytes']}-byte header "
                      f"included), rate weight {rate.get('rate_weight', 0):.3g}"
                      + (f" (target {rate['target_bytes']:g})" if rate.get("target_bytes")
                         else "")
                      + f"; range coder {e['encode_s_per_sample'] * 1e6:.0f} us to encode, "
                      f"{e['decode_s_per_sample'] * 1e6:.0f} us to decode a sample; decoded "
                      f"exactly: {'yes' if e['decoded_exactly'] else 'NO'}")
    names = ", ".join([artifact["path"] for artifact in r["artifacts"]]
                      + (["entropy.npz"] if r.get("entropy") else [])
                      + (["head.int8.tflite"] if "int8-head" in r["end_to_end"] else []))
    console.print(f"wrote {names} to {out}")
    for failed in r["failed"]:
        console.print(f"[red]failed:[/] {failed}")


@split_app.command("run", cls=HelpCommand)
def run_cmd(
    split_dir: Annotated[str, typer.Argument(help="The OUT directory of `edgepipe split`.")],
    server: Annotated[str, typer.Option(help="The tail server: http://HOST:PORT (REST) or "
                                        "grpc://HOST:PORT (`edgepipe serve OUT`, Triton, "
                                        "KServe...).")],
    model_name: Annotated[str, typer.Option("--model-name", help="Model name on the server.")] = (
        "tail"),
    data: common.DataOption = None,
    head: Annotated[str | None, typer.Option(
        help="Head artifact in OUT (default: head.int8.tflite, head.tflite, head.onnx, "
             "head.xml, the first present).")] = None,
    zlib_codes: Annotated[bool, typer.Option(
        "--zlib", help="Send the codes as a zlib stream (to the NAME-zlib model).")] = False,
    entropy: Annotated[bool, typer.Option(
        "--entropy", help="Send each sample's range-coded bitstream (a split made with "
        "--entropy; to the NAME-entropy model).")] = False,
    limit: Annotated[int | None, typer.Option(
        "--samples", help="At most this many eval-split samples (default: all).")] = None,
    token_env: Annotated[str, typer.Option(
        help="Environment variable holding the bearer token.")] = "EDGEPIPE_SERVE_TOKEN",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer.")] = 30.0,
    link_bandwidth: Annotated[str | None, typer.Option(
        "--bandwidth", help="Emulate a link of this bandwidth (e.g. 10Mbps) between here and "
        "the server: a pacing proxy on 127.0.0.1; the result compares the measured end to end "
        "with split plan's link model.")] = None,
    link_rtt: Annotated[str, typer.Option(
        "--rtt", help="The emulated link's round trip, e.g. 20ms.")] = "0ms",
    json_output: common.JsonOption = False,
) -> None:
    """Run the head here and the tail on a server, sample by sample over the eval split:
    accuracy, agreement with the local tail, and each request's stages (head, encode,
    serialize, round trip, the server's share, deserialize) and bytes on the wire."""
    config = {"split": split_dir, "server": server, "model_name": model_name, "data": data,
              "head": head, "zlib": zlib_codes, "entropy": entropy, "samples": limit,
              "bandwidth": link_bandwidth, "rtt": link_rtt}
    with command("split run", json_output, config) as output:
        import os

        from edgepipe.serve.client import Endpoint, remote_split

        if zlib_codes and entropy:
            from edgepipe.errors import InputError

            raise InputError("Give --zlib or --entropy, not both.",
                             hint="--entropy sends the bitstreams of a split made with "
                                  "--entropy; --zlib the codes zlib'd.",
                             reference="conflicting-encodings")
        suffix = "-zlib" if zlib_codes else "-entropy" if entropy else ""
        name = model_name if model_name.endswith(suffix) else model_name + suffix
        endpoint = Endpoint.parse(server, name, os.environ.get(token_env) or None)
        link = None
        if link_bandwidth is not None:
            from edgepipe.split.plan import Link, parse_duration, parse_rate

            link = Link(parse_rate(link_bandwidth), parse_duration(link_rtt))
        result = remote_split(split_dir, endpoint, data=data, head=head, compress=zlib_codes,
                              limit=limit, timeout_s=timeout, link=link,
                              entropy=entropy).to_dict()
        output.result(result, render=lambda console: _render_run(console, result))


def _render_run(console: Console, r: dict[str, Any]) -> None:
    table = Table(show_edge=False, title=(
        f"{r['samples']} requests, head {r['head']} ({r['head_runtime']}) here -> "
        f"{r['model']} at {r['server']}"), title_justify="left")
    for column in ("stage", "mean", "p50", "p90", "p99"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage, figures in r["stages"].items():
        label = {"network": "network + HTTP/gRPC stack (round trip - server)",
                 "server": "server (receive+decode+queue+tail)"}.get(stage, stage)
        table.add_row(label, *(f"{figures[k] * 1e3:.3f} ms"
                               for k in ("mean_s", "p50_s", "p90_s", "p99_s")))
    console.print(table)
    b = r["bytes"]
    console.print(f"bytes per request body: {b['request_mean']:,.0f} mean (max "
                  f"{b['request_max']:,}); answer {b['response_mean']:,.0f}; the tensor in it "
                  f"({r.get('encoding', 'codes')}): {b['payload_mean']:,.1f} mean")
    local = r["against_local_tail"]
    accuracy = "n/a (no labels)" if r["accuracy"] is None else f"{100 * r['accuracy']:.2f}%"
    console.print(f"accuracy {accuracy} (the split run measured "
                  f"{100 * (r['manifest_accuracy'] or 0):.2f}% in torch)"
                  + ("" if local is None else
                     f"; predictions equal to the local {local['tail']}: "
                     f"{100 * local['prediction_agreement']:.2f}%, max |logit diff| "
                     f"{local['max_abs_logit_diff']:.2g}"))
    if r.get("link"):
        link = r["link"]
        console.print(f"emulated link {link['bandwidth_bps'] / 1e6:g} Mbps, "
                      f"{link['rtt_s'] * 1e3:g} ms round trip: end to end p50 "
                      f"{link['measured_p50_s'] * 1e3:.2f} ms measured, "
                      f"{link['planner_prediction_s'] * 1e3:.2f} ms by split plan's link model "
                      f"({100 * link['error']:+.1f}%: it counts only the packed codes); "
                      f"with the {link['bytes_per_request']:,.0f} bytes per request that "
                      f"went through (both ways, protocol included) and the server's "
                      f"decode, queue and tail, {link['wire_prediction_s'] * 1e3:.2f} ms "
                      f"({100 * link['wire_error']:+.1f}%)")


@split_app.command("plan", cls=HelpCommand)
@takes_model
def plan_cmd(
    model: common.TorchModelArgument,
    device: Annotated[str, typer.Option(help="Device target (`edgepipe targets list`).")],
    server: Annotated[str, typer.Option(help="Server target.")] = "host",
    bandwidth: Annotated[str, typer.Option(help="Link bandwidth, e.g. 10Mbps.")] = "10Mbps",
    rtt: Annotated[str, typer.Option(help="Link round trip, e.g. 20ms.")] = "0ms",
    split_dir: Annotated[str | None, typer.Option(
        "--split", help="A split run directory: its measured bottleneck bytes are used.")
    ] = None,
    data: common.DataOption = None,
    precision: Annotated[str, typer.Option(help="The head's precision on the device.")] = "fp32",
    measure: Annotated[bool, typer.Option(
        "--measure", help="Export each head and tail and profile them where the device and "
        "server are reachable (this machine, or the device behind --remote).")] = False,
    cuts: Annotated[list[str] | None, typer.Option(
        "--cut", help="Only this cut (repeat for several, e.g. --cut pool1 --cut pool2).")] = None,
    host: Annotated[str | None, typer.Option(
        "--remote", help="With --measure: the device, ssh://user@host[:port].")] = None,
    remote_python: Annotated[str, typer.Option(help="Python on the device.")] = "python3",
    codecs: Annotated[list[str] | None, typer.Option(
        "--codec", help="Input codec measured as an option (png, jpeg, webp; repeat; default "
        "all three when --data is given and the input is an image; none for none).")] = None,
    qualities: Annotated[list[int] | None, typer.Option(
        "--quality", help="JPEG/WebP quality measured (repeat; JPEG 5-95, WebP 5-100; "
        "default 10 30 50 70 90).")] = None,
    catalog_dir: CatalogOption = None,
    loading: ModelLoading = NO_OPTIONS,
    json_output: common.JsonOption = False,
) -> None:
    """For every cut: head latency and energy on the device, bytes and transfer time over
    the link, tail latency on the server, end to end; all-on-device and all-on-server
    (with the input sent raw, zlib'd, or coded as PNG, JPEG or WebP: bytes and accuracy
    measured on --data); the Pareto front and where the best option moves with the
    bandwidth (estimated)."""
    config = {"model": model, "device": device, "server": server, "bandwidth": bandwidth,
              "rtt": rtt, "split": split_dir, "data": data, "precision": precision,
              "measure": measure, "cuts": cuts, "remote": host, "catalog": catalog_dir,
              "codecs": codecs, "qualities": qualities, **loading.to_config()}
    with command("split plan", json_output, config) as output:
        from edgepipe.devices.catalog import get_target
        from edgepipe.profiling.runners.ssh import parse_host
        from edgepipe.split.plan import (
            Link,
            check_precision,
            parse_duration,
            parse_rate,
            plan_model,
        )

        link = Link(parse_rate(bandwidth), parse_duration(rtt))
        check_precision(precision)
        loaded = loading.load(model)
        device_target = get_target(device, user=catalog_dir)
        server_target = get_target(server, user=catalog_dir)
        result = plan_model(
            loaded, device_target, server_target, link,
            cuts=[c.strip() for c in cuts if c.strip()] if cuts else None,
            split_dir=split_dir, data=data or None, precision=precision, measure_cuts=measure,
            measure_split=measure,
            device_reachable=device_target.reach == "local" or host is not None,
            server_reachable=server_target.reach == "local",
            host=parse_host(host) if host else None, remote_python=remote_python,
            codecs=codecs, qualities=qualities).to_dict()
        output.result(result, render=lambda console: _render_plan(console, result))


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _plan_cells(o: dict[str, Any], front: list[str]) -> list[str]:
    """head, bytes, transfer, tail, end to end, device mJ, pareto, head/tail of a row."""
    energy = "" if o["device_energy_j"] is None else f"{o['device_energy_j'] * 1e3:.3g}"
    return [f"{o['head_s'] * 1e3:.3g} ms", f"{o['bytes']:,.0f}", f"{o['transfer_s'] * 1e3:.3g} ms",
            f"{o['tail_s'] * 1e3:.3g} ms", f"{o['end_to_end_s'] * 1e3:.3g} ms", energy,
            "*" if o["option"] in front else "",
            f"{o['sources']['head'][:4]}/{o['sources']['tail'][:4]}"]


def _render_codecs(console: Console, r: dict[str, Any], codecs: dict[str, Any]) -> None:
    """The input-codec rows: the input coded on the device, the whole model on the server."""
    table = Table(show_edge=False, title=(
        f"all on server, the input coded on the device ({codecs['samples']} eval samples, "
        f"{'x'.join(map(str, codecs['image']['shape']))} {codecs['image']['mode']}; uncompressed "
        f"{_percent(codecs['float_accuracy'])} top-1, as uint8 pixels "
        f"{_percent(codecs['uint8_accuracy'])})"), title_justify="left")
    for column in ("input as", "encode", "bytes", "p95", "top-1", "end to end", "device mJ",
                   "pareto", "head/tail"):
        table.add_column(column, justify="left" if column == "input as" else "right")
    for o in r["options"]:
        if "codec" not in o:
            continue
        cells = _plan_cells(o, r["pareto"])
        if not o["codec"].get("within_slack", True):
            cells[6] = "over"
        table.add_row(o["option"].removeprefix("all on server (").removesuffix(" input)"),
                      cells[0], cells[1], f"{o['bytes_p95']:,.0f}", _percent(o["accuracy"]),
                      *cells[4:])
    console.print(table)
    if any(not o["codec"].get("within_slack", True) for o in r["options"] if "codec" in o):
        from edgepipe.split.codecs import ACCURACY_SLACK

        console.print(f"over: loses more than {ACCURACY_SLACK:g} top-1 point against the "
                      "uncompressed input; left out of the Pareto front and the sweep")


def _render_plan(console: Console, r: dict[str, Any]) -> None:
    link = r["link"]
    table = Table(show_edge=False, title=(
        f"{r['device']} -> {link['bandwidth_bps'] / 1e6:g} Mbps, {link['rtt_s'] * 1e3:g} ms "
        f"-> {r['server']} ({r['label']})"), title_justify="left")
    for column in ("option", "head", "bytes", "transfer", "tail", "end to end", "device mJ",
                   "pareto", "head/tail"):
        table.add_column(column, justify="left" if column == "option" else "right")
    coded = {o["option"] for o in r["options"] if "codec" in o}
    for o in r["options"]:
        if o["option"].endswith("(raw float32)") or o["option"] in coded:
            continue  # in --json; sending float32 never wins over its 8-bit version
        table.add_row(o["option"], *_plan_cells(o, r["pareto"]))
    console.print(table)
    codecs = r.get("codecs")
    if codecs:
        _render_codecs(console, r, codecs)
    if r.get("verdict"):
        console.print(r["verdict"][0].upper() + r["verdict"][1:] + ".")
    console.print("best by bandwidth: " + "; ".join(
        f"{s['mbps']:g} Mbps: {s['best']} ({s['end_to_end_s'] * 1e3:.3g} ms)" for s in r["sweep"]))
    models = r["models"]
    console.print(f"latency: {models['latency']}; the estimator's error on the host: "
                  f"{models['estimator_error_on_host']}; energy: {models['device_energy']}")
    if models.get("unplanned_cuts"):
        console.print(f"not planned: {models['unplanned_cuts']}")
