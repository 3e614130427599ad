"""The per-layer record every int4-weight backend returns: each weight-carrying layer with
its input and output features and either the bits and group size it got, or what it was
kept in and why (``kept``)."""

from __future__ import annotations

from typing import Any

NOT_DIVISIBLE = "its {k} input features are not a multiple of the group size {g}"
HEAD_8BIT = "the output head, kept in 8 bits (keep_8bit)"
BUDGET_8BIT = "kept in 8 bits by the accuracy budget (--max-drop)"
EMBEDDING_8BIT = "an embedding table, kept in 8 bits (keep_8bit)"
EMBEDDING_FLOAT = "an embedding table: ONNX Runtime's quantizer leaves it float by default"


def quantized(layer: str, op: str, k: int, n: int, bits: int, group: int | None,
              reason: str | None = None) -> dict[str, Any]:
    """A layer whose weights were stored in ``bits`` bits in groups of ``group``
    (None: one scale per output channel); ``reason``: why not the default 4 bits."""
    row: dict[str, Any] = {"layer": layer, "op": op, "in_features": k, "out_features": n,
                           "bits": bits, "group_size": group}
    return row if reason is None else {**row, "reason": reason}


def kept(layer: str, op: str, k: int, n: int, precision: str, reason: str) -> dict[str, Any]:
    """A layer left in ``precision`` (``float`` or ``8-bit``), and why."""
    return {"layer": layer, "op": op, "in_features": k, "out_features": n, "kept": precision,
            "reason": reason}


def left_in_float(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The rows kept in float, as :class:`~edgepipe.compress.base.Compressed` lists them."""
    return [{"layer": r["layer"], "op": r["op"], "reason": r["reason"]}
            for r in rows if r.get("kept") == "float"]


def summary(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many layers got 4 bits, 8 bits, or stayed float."""
    return {"int4": sum(r.get("bits") == 4 for r in rows),
            "int8": sum(r.get("bits") == 8 or r.get("kept") == "8-bit" for r in rows),
            "kept_float": sum(r.get("kept") == "float" for r in rows)}
