"""One check for every model file before any runtime or converter reads it.

:func:`validate_artifact` looks at the bytes of an ``.onnx``, ``.tflite``, ``.xml`` (+ its
``.bin``), ``.pte``, ``.pt2`` or ``.safetensors`` file: that it is not empty, that its magic bytes
are those of its format (and, when they are not, what the file looks like instead), that
its structure is complete (a truncated flatbuffer, a ``.bin`` shorter than its ``.xml``
says, a ``.pte`` shorter than its header declares), and, for ``.pt2`` archives, that nothing in the archive would be unpickled. Every
opener (``load_model`` for MODEL specs, ``open_artifact`` for eval, profile, serve...,
TFLite Micro's ``targets check``) calls it first, so a bad file is a clear
:class:`~edgepipe.errors.ModelError` before any work starts or anything is written.

A ``.pt2`` is a zip that ``torch.export.load`` reads with pickle in several places: weights
and tensor constants marked ``use_pickle`` (``torch.load(weights_only=False)``), torchbind
and opaque constants (``custom_obj_*``, ``opaque_obj_*``: pickle), and the sample inputs
and legacy ``.pt`` members (``weights_only=True`` first, then a silent fallback to full
pickle). AOTInductor packages carry shared libraries that are loaded. Without
``--trust-pickle`` all of these are refused, except members that torch's restricted
unpickler (``weights_only=True``) reads, for which torch never falls back.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgepipe import formats
from edgepipe.errors import ModelError, UnsafePickleError, first_line

# safetensors is a weights file, not an artifact format: the one suffix checked here that the
# format registry does not list.
_WEIGHTS = (".safetensors", "safetensors",
            "save it with safetensors.torch.save_file(model.state_dict(), path).")
PICKLE_HINT = ("if you trust the file's author, pass --trust-pickle (loading it can run any "
               "code the author put in it); better, save the program again with "
               "torch.export.save from plain tensors.")


def validate_artifact(path: str | Path, *, trust_pickle: bool = False) -> None:
    """Raise a ModelError unless ``path`` is a complete file of the format its suffix names.

    The format is the registry's (edgepipe.formats) for the suffix; its ``validator`` checks
    the contents. Suffixes of no format (and not .safetensors) are left to their callers.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    fmt = formats.by_suffix(suffix)
    if fmt is None and suffix != _WEIGHTS[0]:
        return
    if not path.is_file():
        raise ModelError(f"No file at '{path}'.", hint="check the path.",
                         reference="artifact-not-found")
    size = path.stat().st_size
    if size == 0:
        _fail(path, "is empty (0 bytes)")
    with path.open("rb") as handle:
        head = handle.read(512)
    found = sniff(head)
    if fmt is None:
        _check_safetensors(path, size, found, head)
    elif fmt.validator is not None:
        formats.load(fmt.validator)(path, found, head, trust_pickle=trust_pickle)


def sniff(head: bytes) -> str | None:
    """What the first bytes of a file say it is (None: no known signature)."""
    if not head:
        return "an empty file"
    if len(head) >= 8 and head[4:8] == b"TFL3":
        return "TFLite flatbuffer"
    if len(head) >= 8 and head[4:6] == b"ET" and head[6:8].isdigit():
        return "ExecuTorch program"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip archive"
    # before the pickle check: a safetensors header of 128..255 bytes starts with 0x80 0x00,
    # as a pickle's PROTO opcode does; a pickle with zeros at bytes 4..7 and "{" at 8 is not
    # one torch or pickle writes
    if len(head) >= 9 and 0 < struct.unpack("<Q", head[:8])[0] < 100_000_000 \
            and head[8:9] == b"{":
        return "safetensors file"
    if head.startswith(b"\x80") and len(head) > 1 and head[1] <= 5:
        return "Python pickle"
    if head.startswith(b"\x89HDF"):
        return "HDF5 file (Keras)"
    if head.startswith((b"\x7fELF", b"MZ")):
        return "program or library"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        return "XML/HTML text"
    if text.startswith((b"{", b"[")):
        return "JSON text"
    if head[:1] == b"\x08" and (b"pytorch" in head or b"onnx" in head.lower()
                                or head[2:3] == b"\x12" or head[2:3] == b"\x3a"):
        return "ONNX protobuf"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3 or len(head) < 512:  # not a character cut at the end
            return None
    if any(b < 32 and b not in b"\t\r\n\f" for b in head):
        return None
    return "plain text"


def _looks_like(found: str | None, head: bytes) -> str:
    if found is None:
        return f"its first bytes, {head[:8].hex(' ')}, match no model format"
    if found == "plain text":
        preview = head[:40].decode("utf-8", "replace").splitlines()[0] if head.strip() else ""
        return f"it is plain text: {preview!r}"
    return f"its first bytes are those of {_article(found)}"


def _article(name: str) -> str:
    return ("an " if name[0].lower() in "aeiou" else "a ") + name


def _fail(path: Path, what: str, detail: str | None = None, *, hint: str | None = None) -> None:
    suffix = path.suffix.lower()
    fmt = formats.by_suffix(suffix)
    name, repair = (fmt.name, fmt.repair_hint) if fmt else _WEIGHTS[1:]
    raise ModelError(
        f"{suffix} file '{path}' {what}" + (f": {detail}" if detail else "") + ".",
        hint=hint or ("the file is damaged or not what its name says; " + repair),
        reference=f"{name}-invalid",
    )


# --- TFLite -------------------------------------------------------------------------------

def check_tflite_file(path: Path, found: str | None, head: bytes, *,
                      trust_pickle: bool = False) -> None:
    """The TFLite validator: a flatbuffer whose tables and vectors all lie inside the file."""
    if found != "TFLite flatbuffer":
        _fail(path, f"is not a TFLite flatbuffer ({_looks_like(found, head)})")
    _check_flatbuffer(path)


def _check_flatbuffer(path: Path) -> None:
    """Walk the model's tables and vectors; a truncated or corrupt file reads out of bounds."""
    data = path.read_bytes()
    if len(data) < 16:
        _fail(path, f"is truncated ({len(data)} bytes)")
    (root,) = struct.unpack_from("<I", data, 0)
    if root + 4 > len(data):
        _fail(path, "is truncated", f"its root table is at byte {root}, past the end "
              f"({len(data)} bytes)")
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        try:
            from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
        except ImportError:
            return  # no schema to walk with: the magic bytes are all that is checked
    try:
        _walk_model(schema.Model.GetRootAs(data, 0), len(data))
    except (IndexError, ValueError, struct.error, TypeError, OverflowError) as exc:
        _fail(path, "is truncated or corrupt",
              f"reading its flatbuffer went past the end ({len(data)} bytes; {first_line(exc)})")


def _walk_model(model: Any, size: int) -> None:
    for i in range(model.OperatorCodesLength()):
        model.OperatorCodes(i).BuiltinCode()
    if model.SubgraphsLength() == 0:
        raise ValueError("no subgraph")
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for i in range(graph.TensorsLength()):
            tensor = graph.Tensors(i)
            tensor.ShapeAsNumpy()
            tensor.Buffer()
        graph.InputsAsNumpy()
        graph.OutputsAsNumpy()
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            op.OpcodeIndex()
            op.InputsAsNumpy()
            op.OutputsAsNumpy()
    for i in range(model.BuffersLength()):
        buffer = model.Buffers(i)
        if buffer.DataLength():
            buffer.DataAsNumpy()
        offset = buffer.Offset() if hasattr(buffer, "Offset") else 0
        if offset > 1 and offset + buffer.Size() > size:
            raise ValueError(f"buffer {i} lies at bytes {offset}..{offset + buffer.Size()}")


# --- ExecuTorch ---------------------------------------------------------------------------

_PTE_HEADER = 8 + 32  # root offset and file identifier ("ET" + 2 digits), extended header


def check_pte_file(path: Path, found: str | None, head: bytes, *,
                   trust_pickle: bool = False) -> None:
    """The ExecuTorch validator: the program flatbuffer's identifier (``ET`` and two digits at
    bytes 4..8) and, from its extended header (``eh00`` at byte 8), that the file holds the
    whole program and every segment it declares. ExecuTorch's own flatbuffer verifier runs
    when the runtime loads it (InternalConsistency)."""
    if found != "ExecuTorch program":
        _fail(path, f"is not an ExecuTorch program ({_looks_like(found, head)})")
    size = path.stat().st_size
    if size < _PTE_HEADER or head[8:12] != b"eh00":
        _fail(path, "is truncated or corrupt", f"it lacks the extended header (\"eh00\" at "
              f"byte 8) that ExecuTorch writes; the file has {size:,} bytes")
    length, program, base, segments = struct.unpack_from("<IQQQ", head, 12)
    (root,) = struct.unpack_from("<I", head, 0)
    if length < 24 or program < _PTE_HEADER or root >= program:
        _fail(path, "is corrupt", f"its header declares a program of {program:,} bytes with "
              f"its root table at byte {root:,}")
    need = max(program, base + segments if base else 0)
    if size < need:
        _fail(path, "is truncated", f"its header declares {need:,} bytes (program and "
              f"segments), and the file has {size:,}")


# --- OpenVINO IR --------------------------------------------------------------------------

def check_openvino_file(path: Path, found: str | None, head: bytes, *,
                        trust_pickle: bool = False) -> None:
    """The OpenVINO IR validator: a <net> XML whose constants fit in the .bin beside it."""
    import xml.etree.ElementTree as ElementTree

    if found != "XML/HTML text":
        _fail(path, f"is not an OpenVINO IR, which is XML ({_looks_like(found, head)})")
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as exc:
        _fail(path, "is not well-formed XML", first_line(exc))
    if root.tag != "net":
        _fail(path, f"is XML but not an OpenVINO IR (its root element is <{root.tag}>, "
              "not <net>)")
    need = 0
    for data in root.iter("data"):
        if "offset" in data.attrib and "size" in data.attrib:
            try:
                need = max(need, int(data.attrib["offset"]) + int(data.attrib["size"]))
            except ValueError:
                _fail(path, "has a constant whose offset or size is not a number")
    weights = path.with_suffix(".bin")
    if need == 0:
        return
    if not weights.is_file():
        _fail(path, f"needs its weights file '{weights.name}' beside it, and there is none",
              hint="copy the .bin that was exported with this .xml into the same folder (same "
              "name, .bin suffix).")
    have = weights.stat().st_size
    if have < need:
        _fail(path, f"needs {need:,} bytes of weights, and '{weights.name}' has {have:,}",
              "the .bin is truncated or belongs to another export",
              hint="copy the complete .bin exported with this .xml beside it, or export again.")


# --- ONNX ---------------------------------------------------------------------------------

def check_onnx_file(path: Path, found: str | None, head: bytes, *,
                    trust_pickle: bool = False) -> None:
    """The ONNX validator: a protobuf that onnx parses (external data is not read)."""
    import onnx

    if found not in (None, "ONNX protobuf"):
        _fail(path, f"is not an ONNX protobuf ({_looks_like(found, head)})")

    try:
        onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # DecodeError, OSError...
        _fail(path, "is not a valid ONNX model", first_line(exc))


# --- safetensors --------------------------------------------------------------------------

def _check_safetensors(path: Path, size: int, found: str | None, head: bytes) -> None:
    if size < 8:
        _fail(path, f"is truncated ({size} bytes)")
    (length,) = struct.unpack("<Q", head[:8])
    if found != "safetensors file" or 8 + length > size:
        if found not in (None, "safetensors file"):
            _fail(path, f"is not a safetensors file ({_looks_like(found, head)})")
        _fail(path, "is truncated or not a safetensors file",
              f"its header claims {length:,} bytes and the file has {size:,}")
    with path.open("rb") as handle:
        handle.seek(8)
        try:
            header = json.loads(handle.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            _fail(path, "has a damaged header", first_line(exc))
    end = max((entry["data_offsets"][1] for name, entry in header.items()
               if name != "__metadata__" and isinstance(entry, dict)
               and "data_offsets" in entry), default=0)
    if 8 + length + int(end) > size:
        _fail(path, "is truncated", f"its tensors need {8 + length + int(end):,} bytes and the "
              f"file has {size:,}")


# --- torch.export archives ----------------------------------------------------------------

# Members torch reads as text or raw tensor bytes, never as pickle.
_TEXT_MEMBERS = {"archive_format", "archive_version", "byteorder", "version",
                 ".data/version", ".data/serialization_id"}


def pickled_members(path: str | Path) -> list[str]:
    """Members of a ``.pt2`` zip that ``torch.export.load`` would unpickle, each with why.

    An empty list means torch reads the archive without its full unpickler. The archive is
    read twice, as Python's zipfile sees it (torch's fallback for the pre-2.8 layout) and as
    torch's own reader (miniz) does, so that the two zip parsers cannot be played against
    each other; a name stored twice is refused outright.
    """
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            return [f"{duplicates[0]} (stored twice: which copy torch reads is unclear)"]
        # torch strips the archive's top folder (the name it was saved under).
        found = _scan([(n, n.split("/", 1)[1] if "/" in n else n) for n in names],
                      archive.read)
    import torch

    try:
        reader = torch._C.PyTorchFileReader(str(path))
        records = list(reader.get_all_records())
    except (RuntimeError, AttributeError):  # not readable by torch: it fails the same way
        return found
    seen = set(found)
    return found + [f for f in _scan([(r, r) for r in records], reader.get_record)
                    if f not in seen]


def _scan(members: list[tuple[str, str]], read: Callable[[str], bytes]) -> list[str]:
    """What ``pickled_members`` reports for one view: (name, name in the archive's root)."""
    raw: set[str] = set()
    found: list[str] = []
    for name, rel in members:
        folder = ("data/weights/" if rel.startswith("data/weights/") else
                  "data/constants/" if rel.startswith("data/constants/") else None)
        if folder is None or not rel.endswith("_config.json"):
            continue
        try:
            config = json.loads(read(name))["config"]
            entries = [(str(key), dict(meta)) for key, meta in config.items()]
        except (ValueError, KeyError, TypeError, AttributeError):
            found.append(f"{rel} (a payload config edgepipe cannot read, so it cannot tell "
                         "what torch would unpickle)")
            continue
        for key, meta in entries:
            member = f"{folder}{meta.get('path_name', '')}"
            if meta.get("use_pickle"):
                found.append(f"{member} ('{key}' is stored with pickle)")
            elif folder == "data/constants/" and str(meta.get("path_name", "")).startswith(
                    ("custom_obj_", "opaque_obj_")):
                found.append(f"{member} ('{key}' is a pickled Python object)")
            else:
                raw.add(member)
    for name, rel in members:
        if name.endswith("/") or rel in raw or rel in _TEXT_MEMBERS:
            continue
        if rel.startswith("data/aotinductor/") or rel.endswith((".so", ".dll", ".dylib")):
            found.append(f"{rel} (compiled code, loaded as a shared library)")
        elif rel.endswith(".json") or not (
                rel.startswith(("data/weights/", "data/constants/", "data/sample_inputs/"))
                or rel.endswith(".pt")):
            continue  # models/*.json, extra/*: text; other folders torch does not read
        elif not _weights_only_readable(read(name)):
            found.append(f"{rel} (not readable by torch's restricted unpickler, so torch "
                         "would fall back to full pickle)")
    return found


def _weights_only_readable(data: bytes) -> bool:
    """Whether torch.load(weights_only=True), torch's restricted unpickler, reads ``data``."""
    import torch

    if os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "0") not in ("", "0"):
        return False  # weights_only=True would be ignored: nothing is safe to try
    try:
        torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception:
        return False
    return True


def check_pt2_file(path: Path, found: str | None, head: bytes, *,
                   trust_pickle: bool = False) -> None:
    """The torch.export validator: a zip archive with nothing torch would unpickle (unless
    ``trust_pickle``)."""
    if found != "zip archive":
        _fail(path, f"is not a torch.export archive, which is a zip ({_looks_like(found, head)})")
    check_pt2_archive(path, trust_pickle=trust_pickle)


def check_pt2_archive(path: str | Path, *, trust_pickle: bool = False) -> None:
    """Raise UnsafePickleError if ``torch.export.load(path)`` would unpickle or load code,
    unless ``trust_pickle``; a ModelError if the zip itself is unreadable."""
    path = Path(path)
    try:
        found = pickled_members(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        _fail(path, "is not a readable zip archive", first_line(exc))
    if found and not trust_pickle:
        more = f" and {len(found) - 1} more" if len(found) > 1 else ""
        raise UnsafePickleError(
            f"'{path}' holds pickled Python objects that torch.export.load would unpickle "
            f"(running any code they name): {found[0]}{more}; edgepipe refuses it.",
            hint=PICKLE_HINT, details={"members": found})
