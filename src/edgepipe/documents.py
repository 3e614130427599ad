"""Typed documents: the dataclasses behind the JSON edgepipe writes (``manifest.json``,
``report.json``, profile files, the ``--json`` output of the commands).

A document is a dataclass deriving from :class:`Document`. Inside edgepipe it travels as the
object; it becomes JSON only at the edge, with :meth:`Document.to_dict`, and is read back
with :meth:`Document.from_dict`, which is tolerant of files written by older versions (keys
they lack take their defaults; keys it does not know are kept and written back).

:func:`json_schema` describes the JSON form of a document class (what ``to_dict`` returns)
as a JSON Schema; ``scripts/schemas.py`` writes those schemas to ``docs/schemas/``, and
``tests/test_schemas.py`` checks them against real outputs. Changing a document's JSON form
means bumping its ``SCHEMA_VERSION`` (see docs/schemas/README.md).
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union

from edgepipe.errors import InputError

D = TypeVar("D", bound="Document")

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _Absent:
    """The value of an optional key that the JSON form leaves out (not the same as null)."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False


ABSENT: Any = _Absent()


def optional_key(**metadata: Any) -> Any:
    """A dataclass field whose key the JSON form has only when it is set (``ABSENT`` by
    default, left out by ``to_dict``, not required by the schema)."""
    return dataclasses.field(default=ABSENT, metadata=metadata)


def to_json(value: Any) -> Any:
    """``value`` as JSON data: documents and dataclasses by their ``to_dict``, paths as
    strings, tuples as lists; mappings and lists item by item."""
    if hasattr(value, "to_dict") and not isinstance(value, type):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _invalid(where: str, what: str) -> InputError:
    return InputError(f"{where}: {what}.",
                      hint="the file was edited by hand or written by another tool; fix or "
                           "remove it (edgepipe writes it again).",
                      reference="document-invalid")


def from_json(annotation: Any, value: Any, where: str = "document") -> Any:
    """JSON data ``value`` as ``annotation`` says: documents and dataclasses rebuilt, other
    values as they are (numbers are not coerced, so the document reads back unchanged)."""
    origin = typing.get_origin(annotation)
    if annotation is Any or annotation is object:
        return value
    if origin in (Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is not type(None) and _accepts(option, value):
                return from_json(option, value, where)
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise _invalid(where, f"expected a list, found {type(value).__name__}")
        item = (typing.get_args(annotation) or (Any,))[0]
        items = [from_json(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _invalid(where, f"expected a mapping, found {type(value).__name__}")
        args = typing.get_args(annotation)
        item = args[1] if len(args) == 2 else Any
        return {k: from_json(item, v, f"{where}.{k}") for k, v in value.items()}
    if annotation is Path:
        return Path(value) if isinstance(value, str) else value
    if inspect.isclass(annotation) and dataclasses.is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise _invalid(where, f"expected a mapping, found {type(value).__name__}")
        if issubclass(annotation, Document):
            return annotation.from_dict(value, where=where)
        reader = getattr(annotation, "from_dict", None)
        return reader(value) if reader else _build(annotation, value, where)
    return value


def _accepts(annotation: Any, value: Any) -> bool:
    """Whether ``value`` has the JSON shape of ``annotation`` (to pick a union's member)."""
    origin = typing.get_origin(annotation) or annotation
    if origin in (list, tuple):
        return isinstance(value, list | tuple)
    if origin in (dict, Mapping) or (inspect.isclass(origin)
                                     and dataclasses.is_dataclass(origin)):
        return isinstance(value, Mapping)
    if origin is Path:
        return isinstance(value, str)
    if origin is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if inspect.isclass(origin):
        return isinstance(value, origin)
    return True


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(cls: type[Any], data: Mapping[str, Any], where: str) -> Any:
    hints = _hints(cls)
    values, known = {}, set()
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        known.add(f.name)
        if f.name in data:
            values[f.name] = from_json(hints[f.name], data[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise _invalid(where, f"the key '{f.name}' is missing")
    made = cls(**values)
    extra = {k: v for k, v in data.items() if k not in known}
    if extra:
        object.__setattr__(made, "_extra", extra)
    return made


class Document:
    """Base of the typed documents (mix into a ``@dataclass``).

    ``SCHEMA_NAME`` and ``SCHEMA_VERSION`` name its published schema
    (``docs/schemas/<name>.v<version>.schema.json``) on the documents written as files.
    """

    SCHEMA_NAME: ClassVar[str] = ""
    SCHEMA_VERSION: ClassVar[int] = 1
    # Whether the JSON form may carry keys beyond the fields (its schema says so).
    ADDITIONAL_KEYS: ClassVar[bool] = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: every field (``ABSENT`` ones left out, and None ones whose metadata
        says ``omitted_when_none``; a field whose metadata has a ``to_json`` callable written
        by it), then any keys an older or newer file had that this class does not know."""
        document = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is ABSENT or (value is None and f.metadata.get("omitted_when_none")):
                continue
            document[f.name] = f.metadata.get("to_json", to_json)(value)
        for key, value in getattr(self, "_extra", {}).items():
            document.setdefault(key, value)
        return document

    @classmethod
    def from_dict(cls: type[D], data: Mapping[str, Any], *, where: str | None = None) -> D:
        """Read the JSON form back; missing keys with a default take it (files from older
        versions), a missing required key or a wrong container is InputError
        ``document-invalid``."""
        if not isinstance(data, Mapping):
            raise _invalid(where or cls.__name__, f"expected a mapping, found "
                           f"{type(data).__name__}")
        return _build(cls, data, where or cls.__name__)


# ------------------------------------------------------------------ JSON Schema


def _simple(schema: dict[str, Any]) -> bool:
    return set(schema) == {"type"} and isinstance(schema["type"], str)


class SchemaWriter:
    """Turns annotations into JSON Schema, collecting dataclasses under ``$defs``.

    ``overrides`` maps a class to its schema where its ``to_dict`` is not a plain walk of
    its fields (or to a callable taking the writer and returning one); ``fields`` maps
    ``(class, field name)`` to the annotation to describe that field with instead of its
    own (a result whose field is typed loosely today, e.g. ``list[dict[str, Any]]`` of
    manifest records).
    """

    def __init__(self, overrides: Mapping[type, Any] | None = None,
                 fields: Mapping[tuple[type, str], Any] | None = None) -> None:
        self.overrides = dict(overrides or {})
        self.fields = dict(fields or {})
        self.defs: dict[str, dict[str, Any]] = {}

    def of(self, annotation: Any) -> dict[str, Any]:
        if annotation in self.overrides:
            found = self.overrides[annotation]
            return found(self) if callable(found) else dict(found)
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if annotation is Any or annotation is object:
            return {}
        if annotation is type(None) or annotation is None:
            return {"type": "null"}
        if origin in (Union, types.UnionType):
            options = [self.of(a) for a in args]
            if all(_simple(o) for o in options):
                return {"type": [o["type"] for o in options]}
            return {"anyOf": options}
        if origin is Literal:
            return {"enum": list(args)}
        if origin in (list, tuple):
            item = args[0] if args else Any
            return {"type": "array", "items": self.of(item)}
        if origin in (dict, Mapping):
            item = args[1] if len(args) == 2 else Any
            return {"type": "object", "additionalProperties": self.of(item)}
        if annotation is bool:
            return {"type": "boolean"}
        if annotation is int:
            return {"type": "integer"}
        if annotation is float:
            return {"type": "number"}
        if annotation in (str, Path):
            return {"type": "string"}
        if annotation in (dict, Mapping):
            return {"type": "object"}
        if annotation is list:
            return {"type": "array"}
        if inspect.isclass(annotation) and dataclasses.is_dataclass(annotation):
            name = annotation.__name__
            if name not in self.defs:
                self.defs[name] = {}  # placeholder: a class that refers to itself
                self.defs[name] = self.object(annotation)
            return {"$ref": f"#/$defs/{name}"}
        raise TypeError(f"no JSON Schema for {annotation!r}")

    def object(self, cls: type) -> dict[str, Any]:
        """The schema of one dataclass's JSON form (its fields; ``ABSENT`` ones optional, and
        those whose metadata says ``omitted_when_none``: a class whose own ``to_dict`` leaves
        the key out when the value is None)."""
        hints = _hints(cls)
        properties, required = {}, []
        for f in dataclasses.fields(cls):
            if f.name == "schema_version" and getattr(cls, "SCHEMA_NAME", ""):
                schema = {"const": cls.SCHEMA_VERSION}  # type: ignore[attr-defined]
            else:
                schema = self.of(self.fields.get((cls, f.name), hints[f.name]))
            if f.metadata.get("doc"):
                schema = {**schema, "description": f.metadata["doc"]}
            properties[f.name] = schema
            if f.default is not ABSENT and not f.metadata.get("omitted_when_none"):
                required.append(f.name)
        schema: dict[str, Any] = {"type": "object"}
        doc = _first_paragraph(cls)
        if doc:
            schema["description"] = doc
        schema.update(properties=properties, required=required,
                      additionalProperties=bool(getattr(cls, "ADDITIONAL_KEYS", False)))
        return schema


def _first_paragraph(cls: type) -> str:
    doc = cls.__dict__.get("__doc__") or ""
    if not doc or doc.startswith(f"{cls.__name__}("):  # the dataclass's generated one
        return ""
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split()).replace("``", "`")


def json_schema(cls: type, *, name: str, version: int, title: str,
                overrides: Mapping[type, Any] | None = None,
                fields: Mapping[tuple[type, str], Any] | None = None,
                root: Callable[[SchemaWriter], dict[str, Any]] | None = None) -> dict[str, Any]:
    """The published JSON Schema (draft 2020-12) of ``cls``'s JSON form: ``name`` and
    ``version`` make its ``$id`` (``<name>.v<version>.schema.json``). ``root``, given, builds
    the top schema instead of ``cls``'s fields (e.g. to add a constant)."""
    writer = SchemaWriter(overrides, fields)
    top = root(writer) if root else writer.object(cls)
    schema: dict[str, Any] = {"$schema": JSON_SCHEMA_DIALECT,
                              "$id": f"{name}.v{version}.schema.json", "title": title}
    schema.update(top)
    if writer.defs:
        schema["$defs"] = dict(sorted(writer.defs.items()))
    return schema
