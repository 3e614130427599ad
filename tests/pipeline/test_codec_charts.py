"""The report's split charts show the input-codec options of a split plan (measured bytes
and accuracy; the fastest setting of each codec as a line of the plan chart) and say when one
beats every cut."""

from __future__ import annotations

from types import SimpleNamespace

from edgepipe.pipeline.document import PlanCell
from edgepipe.pipeline.html import _codec_marks, _plan_chart


def _row(option, nbytes, seconds, accuracy=None, codec=None, within=True):
    row = {"option": option, "head_s": seconds / 2, "bytes": nbytes, "transfer_s": 0.0,
           "tail_s": seconds / 2, "end_to_end_s": seconds, "device_energy_j": None,
           "sources": {"head": "estimated", "tail": "estimated"}}
    if accuracy is not None:
        row["accuracy"] = accuracy
    if codec:
        row["codec"] = {"codec": codec, "quality": 50, "lossless": False, "agreement": 1.0,
                        "within_slack": within}
        row["bytes_p95"] = nbytes * 1.1
    return row


def _plan():
    return PlanCell(status="ok", device="rpi5", server="host",
                    link={"bandwidth_bps": 1e6, "rtt_s": 0.0}, label="estimated", options=[
                        _row("all on device", 0, 0.02, 0.98),
                        _row("all on server (raw uint8 input)", 3072, 0.03, 0.98),
                        _row("all on server (WebP q=50 input)", 178, 0.002, 0.98, "webp"),
                        _row("all on server (WebP q=10 input)", 129, 0.001, 0.90, "webp",
                             within=False),
                        _row("all on server (JPEG q=50 input)", 480, 0.004, 0.975, "jpeg"),
                        _row("cut pool2 (raw 8-bit)", 2048, 0.02)],
                    pareto=[], sweep=[], models={})


def test_the_charts_show_the_codec_options():
    plan = _plan()
    chart = _plan_chart("split4", plan)
    assert "WebP q=50" in chart and "JPEG q=50" in chart
    assert "WebP q=10" not in chart  # over the accuracy slack: no line
    report = SimpleNamespace(variants=[SimpleNamespace(plans={"rpi5": plan})])
    marks = _codec_marks(report)
    assert {m.tip.split(":")[0] for m in marks} == {
        "input as raw uint8", "input as WebP q=50", "input as WebP q=10", "input as JPEG q=50"}
    labelled = {m.label for m in marks if m.label}
    assert "WebP q=50" in labelled and "JPEG q=50" not in labelled  # WebP: fewer bytes, as good
    assert all("measured" in m.tip for m in marks)


def test_the_verdict_reads_a_report_plan():
    from edgepipe.split.plan import verdict

    said = verdict(_plan().options)
    assert said.startswith("sending the input as WebP q=50 (178 B, 98.00%) beats every cut")
