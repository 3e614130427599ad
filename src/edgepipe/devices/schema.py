"""The shape of a device file in ``devices/catalog/``: every figure says where it comes from.

A :class:`Figure` is a value with its ``kind``: ``datasheet`` or ``measured`` figures name a
source of the file (URL + what it says); ``derived`` figures say how they were derived;
``assumption`` figures say what was assumed. Unknown keys and wrong types are errors.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FigureKind = Literal["datasheet", "measured", "derived", "assumption"]
Reach = Literal["local", "ssh", "adb", "tflm"]
Precision = Literal["fp32", "fp16", "int8"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Figure(Strict):
    """One number and where it comes from."""

    value: float
    kind: FigureKind
    source: str | None = None
    how: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _says_where(self) -> Figure:
        if self.kind in ("datasheet", "measured") and not self.source:
            raise ValueError(f"a {self.kind} figure needs `source` (an id under `sources`)")
        if self.kind == "derived" and not self.how:
            raise ValueError("a derived figure needs `how` (how it was derived)")
        if self.kind == "assumption" and not self.note:
            raise ValueError("an assumption needs `note` (what was assumed and why)")
        return self

    def describe(self) -> str:
        """``datasheet (st-product)``, ``derived: 1 core x ...`` and so on."""
        if self.kind == "derived":
            return f"derived: {self.how}"
        if self.kind == "assumption":
            return f"assumption: {self.note}"
        return f"{self.kind} ({self.source})" + (f": {self.note}" if self.note else "")


class Source(Strict):
    url: str = Field(pattern=r"^(https?://|local:)")
    says: str
    verified: bool = Field(False, description="re-read when the figure was written down")


class Cpu(Strict):
    core: str
    isa: str
    cores: int = Field(gt=0)
    clock_mhz: Figure


class Memory(Strict):
    ram_bytes: Figure | None = None
    sram_bytes: Figure | None = None
    largest_contiguous_sram_bytes: Figure | None = None
    flash_bytes: Figure | None = None
    bandwidth_gbps: Figure | None = None


class Accelerator(Strict):
    name: str
    kind: str
    runtimes: list[str] = []
    peak_gmacs: dict[Precision, Figure] = {}
    note: str | None = None


class Power(Strict):
    idle_w: Figure | None = None
    active_w: Figure | None = None


class EnergySensor(Strict):
    kind: Literal["none", "rapl", "nvml", "ina3221", "rpi5-pmic", "android-battery"]
    note: str


class Mcu(Strict):
    kernel_library: str
    cycles_per_mac_int8: Figure | None = None
    cycles_per_mac_note: str | None = None
    runtime_overhead_sram_bytes: Figure
    runtime_overhead_flash_bytes: Figure


class DeviceEntry(Strict):
    """One device of the catalog (one YAML file): what the device is, not how it is reached
    now (that is :class:`edgepipe.profiling.target.Target`)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    kind: Literal["mcu", "sbc", "soc-module", "phone", "host", "gpu"]
    reach: Reach
    detect: bool = False
    device: Literal["cpu", "cuda"] = "cpu"
    cpu: Cpu | None = None
    accelerator: Accelerator | None = None
    memory: Memory | None = None
    runtimes: list[str]
    peak_gmacs: dict[Precision, Figure] = {}
    power: Power = Power()
    energy_sensor: EnergySensor
    mcu: Mcu | None = None
    sources: dict[str, Source]

    @model_validator(mode="after")
    def _consistent(self) -> DeviceEntry:
        if not self.detect and (self.cpu is None or self.memory is None or not self.peak_gmacs):
            raise ValueError("`cpu`, `memory` and `peak_gmacs` are required unless `detect: true`")
        if self.kind == "mcu" and self.mcu is None:
            raise ValueError("an mcu target needs an `mcu` block (kernel library, overheads)")
        for path, figure in self.figures():
            if figure.source and figure.source not in self.sources:
                raise ValueError(f"{path}: source {figure.source!r} is not under `sources` "
                                 f"(known: {', '.join(self.sources) or 'none'})")
        return self

    def figures(self) -> list[tuple[str, Figure]]:
        """Every figure of the file with its dotted path (``memory.flash_bytes``)."""
        found: list[tuple[str, Figure]] = []

        def walk(prefix: str, value: object) -> None:
            if isinstance(value, Figure):
                found.append((prefix, value))
            elif isinstance(value, BaseModel):
                for key in type(value).model_fields:
                    walk(f"{prefix}.{key}" if prefix else key, getattr(value, key))
            elif isinstance(value, dict):
                for key, item in value.items():
                    walk(f"{prefix}.{key}", item)

        walk("", self)
        return found

    @property
    def sram_for_arena(self) -> Figure | None:
        """The SRAM one TFLite Micro arena can use: the largest contiguous block, else all."""
        if self.memory is None:
            return None
        return self.memory.largest_contiguous_sram_bytes or self.memory.sram_bytes
