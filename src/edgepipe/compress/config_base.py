"""The base every compression config shares, and the registry of methods by name."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from edgepipe.errors import InputError
from edgepipe.formats import export_formats
from edgepipe.model.loaded import check_artifact_name

METHODS: dict[str, type[CompressConfig]] = {}


def register(cls: type[CompressConfig]) -> type[CompressConfig]:
    """Add a config class to :data:`METHODS` under its ``method`` name. The class is the
    method's one entry: its options (fields), ``needs_calibration`` and ``backends`` (format
    -> backend module); the CLI's ``--method`` choices and the recipe's check read it."""
    METHODS[cls.method] = cls
    return cls


@dataclass
class CompressConfig:
    """What every method shares: the formats to write, the seed of every random draw and
    ``name``, the stem of the artifact files (``NAME.int8.onnx``; None: the model's name)."""

    method: ClassVar[str] = ""
    needs_calibration: ClassVar[bool] = False
    # format -> the backend module that writes it (``compress(job) -> Compressed``,
    # imported only when used); the formats a method supports are these keys
    backends: ClassVar[dict[str, str]] = {}
    formats: tuple[str, ...] = ("onnx",)
    seed: int = 0
    name: str | None = None

    def __post_init__(self) -> None:
        if self.name is not None:
            self.name = check_artifact_name(self.name)
        valid = export_formats()
        formats = tuple(str(f).lower().strip() for f in self.formats)
        unknown = [f for f in formats if f not in valid]
        if unknown or not formats:
            raise InputError(
                (f"Unknown format {', '.join(map(repr, unknown))} for --method {self.method}."
                 if unknown else f"No format was given for --method {self.method}."),
                hint=f"valid formats: {', '.join(valid)} (several allowed).",
                reference="unknown-format")
        self.formats = tuple(dict.fromkeys(formats))

    def to_dict(self) -> dict[str, Any]:
        """``{"method": ..., field: value, ...}``: JSON-ready, read back by config_from_dict."""
        document: dict[str, Any] = {"method": self.method}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "name" and value is None:
                continue  # left out unless given, as before there was a name
            document[item.name] = list(value) if isinstance(value, tuple) else value
        return document
