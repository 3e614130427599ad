"""The JSON edge of compress's typed results: a dataclass whose document is its fields."""

from __future__ import annotations

import dataclasses
from typing import Any, Self


class Document:
    """Mixed into a dataclass whose ``to_dict`` is its fields in order (nested dataclasses
    and containers copied) and whose ``from_dict`` takes them back by name."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> Self:
        return cls(**document)
