"""The sizes of a low-bit artifact: what the file holds (measured) beside what its weights
would take packed at their bit width (computed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PACKED_RULE = ("ceil(bits x weights / 8) + 4 B per channel scale, per bias value and per "
               "activation scale")


@dataclass
class PackedSizes:
    """Bytes on disk and int8 weight bytes in the file (measured) beside the packed size."""

    file_bytes: int
    int8_weight_bytes_in_file: int
    packed_bytes_computed: int
    int8_bytes_computed: int

    @property
    def packing_would_help(self) -> bool:
        """QCDQ stores low-bit weights as int8: packing at the bit width would be smaller."""
        return self.packed_bytes_computed < self.int8_bytes_computed

    def to_dict(self) -> dict[str, Any]:
        return {"file_bytes": self.file_bytes, "file_bytes_kind": "measured",
                "int8_weight_bytes_in_file": self.int8_weight_bytes_in_file,
                "packed_bytes_computed": self.packed_bytes_computed,
                "int8_bytes_computed": self.int8_bytes_computed, "packed_rule": PACKED_RULE}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> PackedSizes:
        return cls(document["file_bytes"], document["int8_weight_bytes_in_file"],
                   document["packed_bytes_computed"], document["int8_bytes_computed"])
