"""JSON values as types, for the few places where a document is free-form by nature (an
error's details, a factory's keyword arguments, a runtime's options). Documents with a known
shape are typed documents (edgepipe.documents) instead (docs/architecture.md, "Typed
documents"). This module imports nothing from edgepipe."""

from __future__ import annotations

from typing import TypeAlias

JsonValue: TypeAlias = "str | int | float | bool | None | list[JsonValue] | dict[str, JsonValue]"
JsonObject: TypeAlias = "dict[str, JsonValue]"

__all__ = ["JsonObject", "JsonValue"]
