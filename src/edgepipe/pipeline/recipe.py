"""The recipe: what the user has (model, data, targets, accuracy budget) and what to make of it
(variants, formats), as one YAML file, validated before anything runs.

An unknown key, a wrong type, an unknown method, format or target is an error that names the
key and its line in the file, and lists what is valid. ``load_recipe(path)`` returns a
:class:`Recipe`; ``Recipe.step_config(...)`` gives the exact configuration a step runs with,
which is what its cache key is made of.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgepipe.devices.catalog import using as using_catalog
from edgepipe.errors import InputError

RECIPE_VERSION = 1
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SPECIAL_METHODS = ("float", "split")


@contextmanager
def _as_value_error() -> Iterator[None]:
    """An edgepipe check's InputError as the ValueError pydantic reports with the key."""
    try:
        yield
    except InputError as exc:
        raise ValueError(f"{exc.message} ({exc.hint})") from None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(Strict):
    """A MODEL spec as the command line takes it (``builtin:digits-cnn``, ``torchvision:NAME``,
    ``model.onnx``, ``model.pt2``, ``package.module:factory``)."""

    spec: str
    input_shape: str | None = None
    weights: str | None = None
    args: dict[str, Any] = {}  # keyword arguments of a factory (num_classes: 10, ...)

    @field_validator("input_shape")
    @classmethod
    def _shape(cls, value: str | None) -> str | None:
        if value is not None:
            from edgepipe.tensors import parse_shape

            with _as_value_error():
                parse_shape(value)
        return value


class DataSpec(Strict):
    spec: str
    normalize: str | None = None
    seed: int = 0


class Variant(Strict):
    """One thing to make: ``float`` (the model exported as is), a compression method
    (``int8``, ``int8-dynamic``, ``fp16``, ``wNaM``, ``binary``, ``lowrank``) with its options,
    or ``split`` (``at`` and ``bottleneck``)."""

    name: str
    method: str
    formats: list[str] = ["onnx"]
    options: dict[str, Any] = {}
    at: str | None = None
    bottleneck: int | None = Field(default=None, ge=1)
    bits: int = Field(default=8, ge=1, le=8)
    # a split's entropy-coded bottleneck: the rate term's weight, or a target to steer it to
    entropy: bool = False
    rate_weight: float | None = None
    target_bytes: float | None = None
    # a split's plan: the server the tail runs on and the link to it
    server: str | None = None
    bandwidth: str | None = None
    rtt: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"{value!r} cannot name a folder: use letters, digits, '.', '_' "
                             "and '-', starting with a letter or digit")
        return value

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        from edgepipe.compress.config import LOW_BIT_METHOD, METHODS, method_names

        if value in SPECIAL_METHODS or value in METHODS or LOW_BIT_METHOD.match(value):
            return value
        raise ValueError(f"unknown method {value!r}; valid: "
                         f"{', '.join([*SPECIAL_METHODS, *method_names()])} (wNaM: any N, M)")

    @field_validator("formats")
    @classmethod
    def _formats(cls, value: list[str]) -> list[str]:
        from edgepipe.formats import export_formats

        valid = export_formats()
        unknown = [f for f in value if f not in valid]
        if unknown or not value:
            raise ValueError(f"unknown format {', '.join(map(repr, unknown))}; valid: "
                             f"{', '.join(valid)}" if unknown else "at least one format")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _by_method(self) -> Variant:
        if self.method == "split":
            if self.at is None or self.bottleneck is None:
                raise ValueError("a split variant needs `at` (the cut) and `bottleneck` "
                                 "(channels)")
            from edgepipe.split.plan import parse_duration, parse_rate

            with _as_value_error():
                parse_rate(self.link[0])
                parse_duration(self.link[1])
            TargetSpec(name=self.server or "host")
            from edgepipe.split.train import SplitTraining
            from edgepipe.training_settings import RENAMED

            known = {f.name for f in dataclasses.fields(SplitTraining)} - {"seed"}
            unknown = sorted(set(self.options) - known - set(RENAMED))
            if unknown:
                raise ValueError(f"{', '.join(unknown)}: not an option of method: split; it "
                                 f"takes {', '.join(sorted(known))}")
            with _as_value_error():
                SplitTraining.from_options(self.options)
            from edgepipe.split.api import SplitConfig

            with _as_value_error():  # entropy, rate_weight and target_bytes together
                SplitConfig(at=self.at, bottleneck=self.bottleneck, bits=self.bits,
                            entropy=self.entropy, rate_weight=self.rate_weight,
                            target_bytes=self.target_bytes)
            return self
        split_only = [k for k in ("at", "bottleneck", "server", "bandwidth", "rtt",
                                  "rate_weight", "target_bytes")
                      if getattr(self, k) is not None] + (["entropy"] if self.entropy else []) \
            + (["bits"] if "bits" in self.model_fields_set else [])  # 8 unless given
        if split_only:
            raise ValueError(f"{', '.join(split_only)} belong{'s' if len(split_only) == 1 else ''}"
                             " to method: split")
        if self.method == "float":
            if self.options:
                raise ValueError("method: float takes no options")
            return self
        from edgepipe.compress.config import make_config

        if "formats" in self.options:  # a key of the variant itself, not of its method
            raise ValueError("formats belongs to the variant (formats: [onnx, tflite]), not "
                             "to its options")
        with _as_value_error():  # the method's own check: names an option it lacks
            make_config(self.method, formats=tuple(self.formats), **self.options)
        return self


    @property
    def link(self) -> tuple[str, str]:
        """A split's link to its server: bandwidth and round trip (10Mbps, 20ms unless
        given)."""
        return self.bandwidth or "10Mbps", self.rtt or "20ms"


class TargetSpec(Strict):
    """A catalog target; ``remote: ssh://user@host`` or ``adb://SERIAL`` measures on the
    device itself, otherwise a target other than ``host`` is estimated."""

    name: str
    remote: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "host" in data and "remote" not in data:
            import warnings

            warnings.warn("the target key 'host' is now 'remote'; 'host' will stop working in "
                          "the next release.", FutureWarning, stacklevel=2)
            data = {("remote" if k == "host" else k): v for k, v in data.items()}
        return data

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        from edgepipe.devices.catalog import load_catalog

        names = sorted(load_catalog(detect_host=False))
        if value not in names:
            raise ValueError(f"unknown target {value!r}; valid: {', '.join(names)}")
        return value


class Budget(Strict):
    """The accuracy a variant may lose against the float model, in top-1 points (1 = one
    point, as ``compress --max-drop``), for it to be recommended; a variant over it fails
    the run."""

    max_drop: float = Field(default=1.0, ge=0, le=100, allow_inf_nan=False)

    @field_validator("max_drop")
    @classmethod
    def _points(cls, value: float) -> float:
        if 0 < value < 0.1:
            import logging

            logging.getLogger("edgepipe").warning(
                "budget.max_drop %g is in top-1 points: %g of a point. Before edgepipe 0.2 "
                "it was a fraction (0.01 for one point); one point is now max_drop: 1.",
                value, value)
        return value


class ProfileSettings(Strict):
    runs: int = Field(default=50, ge=1)
    duration: float = Field(default=1.0, gt=0)
    warmup: int = Field(default=5, ge=0)
    threads: int | None = Field(default=None, ge=1)
    per_layer: bool = True
    energy: bool = False


class Recipe(Strict):
    version: Literal[1] = RECIPE_VERSION
    name: str = "recipe"
    catalog: str | None = None  # a folder of your own target YAML files (as --catalog)
    model: ModelSpec
    data: DataSpec
    variants: list[Variant] = Field(min_length=1)
    targets: list[TargetSpec] = Field(min_length=1)
    budget: Budget = Budget()
    profile: ProfileSettings = ProfileSettings()

    @field_validator("targets", mode="before")
    @classmethod
    def _short_targets(cls, value: Any) -> Any:
        if isinstance(value, list):  # `- rpi5` is short for `- name: rpi5`
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _unique(self) -> Recipe:
        for what, names in (("variant", [v.name for v in self.variants]),
                            ("target", [t.name for t in self.targets])):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"{what} {', '.join(map(repr, twice))} is listed twice")
        return self


MAX_RECIPE_BYTES = 1 << 20  # a recipe is a page of YAML, not a data file
MAX_RECIPE_NODES = 100_000  # values once anchors (&) and aliases (*) are expanded


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe; every problem names its key and line.

    The file is untrusted input: it must be UTF-8 text under 1 MiB, and its YAML is composed
    (not built) first, so an alias bomb (a "billion laughs") is refused by the size it would
    expand to before any of it is built.
    """
    path = Path(path)
    text = _read_text(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_expansion(root, path)
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise InputError(f"The recipe '{path.name}' is not valid YAML{where}: "
                         f"{getattr(exc, 'problem', None) or exc}.",
                         hint="fix the YAML syntax.", reference="bad-recipe") from exc
    except RecursionError as exc:
        raise InputError(f"The recipe '{path.name}' is nested too deeply to read.",
                         hint="a recipe is a few levels of keys and lists; flatten it.",
                         reference="bad-recipe") from exc
    if not isinstance(document, dict):
        raise InputError(f"The recipe '{path.name}' does not hold a mapping.",
                         hint="a recipe has keys model, data, variants, targets (see "
                              "examples/quickstart.yaml).", reference="bad-recipe")
    _relative_to(document, path.parent)
    catalog = document.get("catalog")
    if isinstance(catalog, str) and catalog and not Path(catalog).expanduser().is_absolute():
        document["catalog"] = str((path.parent / catalog).resolve())  # beside the recipe
    try:
        with using_catalog(document.get("catalog") if isinstance(document.get("catalog"), str)
                           else None):
            return Recipe.model_validate(document)
    except ValidationError as exc:
        problems = [_problem(error, root) for error in exc.errors()]
        raise InputError(f"The recipe '{path.name}' is invalid: " + "; ".join(problems[:6])
                         + ("; …" if len(problems) > 6 else "") + ".",
                         hint="see examples/quickstart.yaml for every key.",
                         reference="bad-recipe", details={"errors": problems}) from exc


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise IsADirectoryError(21, "Is a directory")
        if size > MAX_RECIPE_BYTES:
            raise InputError(f"The recipe '{path}' is {size:,} bytes; a recipe is at most "
                             f"{MAX_RECIPE_BYTES:,}.", hint="give the recipe's YAML file, not "
                             "a model or data file.", reference="bad-recipe")
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"Cannot read the recipe '{path}': {exc.strerror}.",
                         hint="check the path.", reference="recipe-not-found") from exc
    try:
        text = raw.decode("utf-8-sig")  # a BOM from a Windows editor is fine
    except UnicodeDecodeError as exc:
        raise InputError(f"The recipe '{path}' is not UTF-8 text (byte {exc.start} is "
                         f"0x{raw[exc.start]:02x}).", hint="give the recipe's YAML file (see "
                         "examples/quickstart.yaml), not a model or data file.",
                         reference="bad-recipe") from exc
    if "\x00" in text:
        raise InputError(f"The recipe '{path}' holds NUL bytes: it is not a text file.",
                         hint="give the recipe's YAML file, not a model or data file.",
                         reference="bad-recipe")
    return text


def _check_expansion(root: yaml.Node | None, path: Path) -> None:
    """Refuse a document that would expand to more than MAX_RECIPE_NODES values, or that
    refers to itself; counted on the composed graph, where an alias is one shared node."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise InputError(f"The recipe '{path.name}' refers to itself (an alias inside "
                             f"its own anchor, line {node.start_mark.line + 1}).",
                             hint="remove the recursive alias.", reference="bad-recipe")
        active.add(key)
        total = 1
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        for child in children:
            total += size(child)
            if total > MAX_RECIPE_NODES:
                raise InputError(
                    f"The recipe '{path.name}' would expand to more than "
                    f"{MAX_RECIPE_NODES:,} values (anchors and aliases, near line "
                    f"{child.start_mark.line + 1}).", hint="a recipe needs a few dozen values; "
                    "remove the repeated aliases.", reference="recipe-too-large")
        active.discard(key)
        sizes[key] = total
        return total

    if root is not None:
        size(root)


def _relative_to(document: dict[str, Any], folder: Path) -> None:
    """Files named in the recipe (model, weights, data) are found beside the recipe first,
    as a user who keeps them together expects; else where the command runs."""
    for section, key in (("model", "spec"), ("model", "weights"), ("data", "spec")):
        part = document.get(section)
        value = part.get(key) if isinstance(part, dict) else None
        if isinstance(value, str) and not Path(value).is_absolute() \
                and (folder / value).exists():
            part[key] = str((folder / value).resolve())


def _problem(error: dict[str, Any], root: yaml.Node | None) -> str:
    loc = [part for part in error["loc"] if not (isinstance(part, str) and "[" in part)]
    key = ".".join(str(part) for part in loc) or "(top level)"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    line = _line(root, loc)
    return f"{key}{f' (line {line})' if line else ''}: {message}"


def _line(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """The 1-based line of the deepest node ``loc`` reaches in the composed YAML."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if found is None:
                return line
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
