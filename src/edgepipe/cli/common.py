"""What every command shares: output (human on stderr, ``--json`` on stdout), errors,
progress and the common options.

A command body looks like::

    with command("inspect", json_output, config=...) as out:
        report = inspect_model(...)
        out.result(report.to_dict(), render=lambda console: ...)

``command`` records whether ``--json`` was asked for, so that an error raised inside the
body is written as a JSON document too; ``out.result`` prints exactly one JSON document
on stdout with ``--json``, or calls ``render`` with a stderr console otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol

import typer
from rich.console import Console

from edgepipe.documents import Document, optional_key
from edgepipe.errors import EdgepipeError
from edgepipe.json_types import JsonObject
from edgepipe.progress import ProgressCallback, ProgressEvent
from edgepipe.units import format_bytes  # noqa: F401  (the commands' import of it)

SCHEMA_VERSION = 1  # of every command's --json document (docs/schemas/<command>.v1...)

# Off a terminal (logs, CI, a file) Rich would wrap tables at 80 columns; 120 keeps rows whole.
# Results go to stdout (``edgepipe inspect M > table.txt`` keeps the table); progress, logs,
# warnings and errors go to stderr.
stderr = Console(stderr=True, highlight=False, soft_wrap=True,
                 width=None if sys.stderr.isatty() or os.environ.get("COLUMNS") else 120)
stdout = Console(highlight=False, soft_wrap=True,
                 width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 120)


@dataclass
class _State:
    json_output: bool = False
    debug: bool = bool(os.environ.get("EDGEPIPE_DEBUG"))
    quiet: bool = False  # -q: results and errors only (no progress, no info logs)
    verbose: bool = False  # -v: info logs, and the backends' own log lines
    command: str | None = None
    config: dict[str, Any] = field(default_factory=dict)


state = _State()

# ---------------------------------------------------------------- common options

# The --help panels the shared options appear in (edgepipe.cli.help).
MODEL_PANEL = "Loading the model"
DATA_PANEL = "Data"

ModelArgument = Annotated[str, typer.Argument(
    help="MODEL spec: .onnx, .pt2, FILE.py:factory, package.module:factory, torchvision:NAME, "
         "builtin:NAME (docs/guide/models-and-data.md).")]
TorchModelArgument = Annotated[str, typer.Argument(
    help="MODEL spec of a torch model: FILE.py:factory, package.module:factory, "
         "torchvision:NAME, builtin:NAME.")]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")
]
OutOption = Annotated[
    Path, typer.Option("--out", "-o", help="Run directory for artifacts and manifest.json.")
]
ArtifactNameOption = Annotated[
    str | None,
    typer.Option("--name", help="Stem of the artifact files, e.g. --name mynet gives "
                 "mynet.onnx (default: the model's name, e.g. its factory's)."),
]
InputShapeOption = Annotated[
    str | None,
    typer.Option("--input-shape", rich_help_panel=MODEL_PANEL,
                 help="Shape of the one float input, e.g. 1x3x224x224."),
]
InputOption = Annotated[
    list[str] | None,
    typer.Option(
        "--input", rich_help_panel=MODEL_PANEL,
        help="NAME:SHAPE:DTYPE for each input of a model with several (-1 or a name for a "
        "dynamic dimension), e.g. input_ids:1x128:int64.",
    ),
]
WeightsOption = Annotated[
    Path | None,
    typer.Option("--weights", rich_help_panel=MODEL_PANEL,
                 help="State dict for the model: .pt/.pth (weights only) or .safetensors."),
]
ModelArgOption = Annotated[
    list[str] | None,
    typer.Option("--model-arg", rich_help_panel=MODEL_PANEL,
                 help="KEY=VALUE passed to the model factory, e.g. num_classes=10."),
]
DataOption = Annotated[
    str | None,
    typer.Option("--data", rich_help_panel=DATA_PANEL,
                 help="DATA spec: data.npz, a folder of class sub-folders of images or of "
                 "MNIST idx files, builtin:digits, builtin:fashion-mnist, or for an hf:FOLDER "
                 "text model texts.txt (one per line) or texts.tsv (label<TAB>text)."),
]
NormalizeOption = Annotated[
    str | None,
    typer.Option("--normalize", rich_help_panel=DATA_PANEL,
                 help="For image folders: none (0..255), unit (0..1) or imagenet."),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed for splits and sample inputs.")]
TrustPickleOption = Annotated[
    bool,
    typer.Option(
        "--trust-pickle", rich_help_panel=MODEL_PANEL,
        help="Allow loading pickled Python objects (this runs code from the file).",
    ),
]


def parse_model_args(items: list[str] | None) -> dict[str, Any]:
    """``["num_classes=10", "width=0.5"]`` -> ``{"num_classes": 10, "width": 0.5}``."""
    from edgepipe.errors import InputError

    result: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"Cannot read --model-arg {item!r}.",
                             hint="write KEY=VALUE, e.g. --model-arg num_classes=10.",
                             reference="bad-model-arg")
        try:
            result[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            result[key.strip()] = value
    return result


@dataclass(frozen=True)
class ModelLoading:
    """How a command loads its MODEL: the options every model-taking command shares, declared
    once (:func:`takes_model` adds them to a command)."""

    input_shape: str | None = None
    inputs: list[str] | None = None
    weights: Path | None = None
    model_args: list[str] | None = None
    trust_pickle: bool = False

    def load_options(self, model: str) -> dict[str, Any]:
        """The keyword arguments of ``load_model`` for ``model``."""
        from edgepipe.tensors import parse_input_option, parse_shape

        return {
            "spec": model,
            "input_shape": parse_shape(self.input_shape) if self.input_shape else None,
            "inputs": [parse_input_option(t) for t in self.inputs] if self.inputs else None,
            "weights": self.weights,
            "model_args": parse_model_args(self.model_args),
            "trust_pickle": self.trust_pickle,
        }

    def load(self, model: str) -> Any:
        from edgepipe.model import load_model

        return load_model(**self.load_options(model))

    def to_config(self) -> dict[str, Any]:
        """The options as a command's ``--json`` config records them."""
        return {"input_shape": self.input_shape, "inputs": self.inputs,
                "weights": str(self.weights) if self.weights else None,
                "model_args": self.model_args, "trust_pickle": self.trust_pickle}


NO_OPTIONS = ModelLoading()  # the default a command declares; takes_model always passes its own

_MODEL_OPTIONS = (("input_shape", InputShapeOption, None), ("inputs", InputOption, None),
                  ("weights", WeightsOption, None), ("model_args", ModelArgOption, None),
                  ("trust_pickle", TrustPickleOption, False))


def takes_model(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command the shared model options (--input-shape, --input, --weights,
    --model-arg, --trust-pickle): the command declares ``loading: ModelLoading``, which
    Typer does not see; it sees the five options instead, just before ``--json``."""
    import functools
    import inspect

    signature = inspect.signature(command, eval_str=True)
    own = [p for name, p in signature.parameters.items() if name != "loading"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                               annotation=annotation)
             for name, annotation, default in _MODEL_OPTIONS]
    at = next((i for i, p in enumerate(own) if p.name == "json_output"), len(own))
    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.POSITIONAL_ONLY) else p
        for p in [*own[:at], *added, *own[at:]]]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        loading = ModelLoading(**{name: kwargs.pop(name) for name, _, _ in _MODEL_OPTIONS})
        return command(loading=loading, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


# ---------------------------------------------------------------- output


@dataclass(kw_only=True)
class ErrorOutput(Document):
    """An expected failure as ``--json`` prints it (``EdgepipeError.to_dict``)."""

    type: str
    reference: str
    message: str
    hint: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class CommandOutput(Document):
    """The one JSON document a command prints on stdout with ``--json``: the command, whether
    it did its whole job, the options it ran with, and its result or its error."""

    schema_version: int = SCHEMA_VERSION
    command: str
    ok: bool
    config: dict[str, Any] = field(default_factory=dict)
    result: Any = optional_key(doc="the command's typed result (its to_dict)")
    error: ErrorOutput = optional_key()


class SupportsToDict(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


class Output:
    """Collects one command's result and prints it the way the user asked."""

    def __init__(self, name: str, json_output: bool, config: JsonObject) -> None:
        self.name = name
        self.json_output = json_output
        self.config = dict(config)
        self.done = False

    def result(self, result: SupportsToDict | JsonObject, render: Callable[[Console], None], *,
               ok: bool = True) -> None:
        """Print ``result`` (a typed result, or its JSON form) on stdout: one JSON document
        with ``--json``, else ``render``'s human text. Progress and logs stay on stderr.
        ``ok=False``: the command did part of its job (the result says what failed) and exits
        with PARTIAL_EXIT.
        """
        self.done = True
        if self.json_output:
            write_json(CommandOutput(command=self.name, ok=ok, config=self.config,
                                     result=result))
        else:
            render(stdout)


def write_json(document: CommandOutput) -> None:
    sys.stdout.write(json.dumps(document.to_dict(), indent=2, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


@contextmanager
def command(name: str, json_output: bool, config: dict[str, Any] | None = None) -> Iterator[Output]:
    """Run a command body; errors inside it are rendered by :func:`report_error`."""
    state.json_output = json_output
    state.command = name
    state.config = config or {}
    setup_logging()
    try:
        yield Output(name, json_output, state.config)
    except KeyboardInterrupt as exc:
        # Typer would turn this into "Aborted!" and exit 1: 130 for Ctrl-C, 143 for SIGTERM.
        raise SystemExit(interrupted(exc)) from None


def interrupted(exc: BaseException) -> int:
    """Say that the command was interrupted (Ctrl-C or a signal); its exit status."""
    from edgepipe.errors import interrupt_exit_code

    code = interrupt_exit_code(exc)
    stderr.print("[bold red]interrupted[/]" if code == 130
                 else f"[bold red]terminated[/] (signal {code - 128})")
    return code


def report_error(error: EdgepipeError) -> None:
    """Print an expected failure: ``error: <reference>``, the message and a hint."""
    stderr.print(f"[bold red]error:[/] {error.reference}", highlight=False)
    stderr.print(error.message, markup=False, highlight=False)
    if error.hint:
        stderr.print(f"[bold]hint:[/] {escape(error.hint)}")
    if state.json_output:
        write_json(CommandOutput(command=state.command, ok=False, config=state.config,
                                 error=ErrorOutput.from_dict(error.to_dict())))


def escape(text: str) -> str:
    """``text`` with Rich markup escaped, for user-supplied strings in printed lines."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def format_count(value: int) -> str:
    """``1814073344`` -> ``1.81 G``."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {unit}"
    return str(value)


def setup_logging() -> None:
    """Route the ``edgepipe`` logger (and warnings) to stderr through Rich: info and up
    (debug with --debug, errors only with -q); with -v, the backends' Python loggers too."""
    logger = logging.getLogger("edgepipe")
    logger.setLevel(logging.DEBUG if state.debug else logging.ERROR if state.quiet
                    else logging.INFO)
    if not any(getattr(h, "_edgepipe", False) for h in logger.handlers):
        logger.addHandler(_rich_handler())
        logger.propagate = False
    # -v: the third-party loggers (nncf, absl, torch...) at info too, through Rich; the
    # handler goes again when a later command in the same process runs without -v
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_edgepipe", False)]
    if state.verbose and not ours:
        _root_level[:] = [root.level]
        root.addHandler(_rich_handler())
        root.setLevel(min(root.level, logging.INFO))
    elif ours and not state.verbose:
        for handler in ours:
            root.removeHandler(handler)
        root.setLevel(_root_level[0] if _root_level else logging.WARNING)


_root_level: list[int] = []  # the root logger's level before -v lowered it


def _rich_handler() -> logging.Handler:
    from rich.logging import RichHandler

    handler = RichHandler(console=stderr, show_time=False, show_path=False,
                          rich_tracebacks=False, markup=False)
    handler._edgepipe = True  # type: ignore[attr-defined]
    return handler


@contextmanager
def progress_bars() -> Iterator[ProgressCallback | None]:
    """A callback drawing the progress events of :mod:`edgepipe.progress` as determinate
    Rich bars on stderr, one per step with its figure (transient: gone when the block ends);
    None, so nothing is drawn, when stderr is not a terminal or with -q."""
    if state.quiet or not stderr.is_terminal:
        yield None
        return
    bars = _Bars()
    try:
        yield bars
    finally:
        bars.close()


class _Bars:
    """The Rich display of progress events. It refreshes on each event and twice a second
    (the elapsed time), never while a backend's native stderr is being captured
    (:func:`edgepipe.native_logs.native_stderr`)."""

    def __init__(self) -> None:
        import threading

        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                            MofNCompleteColumn(), TextColumn("{task.fields[figure]}"),
                            TimeElapsedColumn(), console=stderr, transient=True,
                            auto_refresh=False, redirect_stdout=False)
        self.tasks: dict[str, Any] = {}
        self.drawn = 0.0
        self.bar.start()
        self.stopped = threading.Event()
        self.ticker = threading.Thread(target=self._tick, daemon=True)
        self.ticker.start()

    def __call__(self, event: ProgressEvent) -> None:
        total = max(event.total, 1)
        shown = {"completed": min(event.done, total), "total": total,
                 "figure": escape(event.figure), "visible": event.done < event.total}
        task = self.tasks.get(event.step)
        if task is None:
            self.tasks[event.step] = self.bar.add_task(escape(event.step), **shown)
        else:
            self.bar.update(task, **shown)
        if event.done in (0, event.total) or time.monotonic() - self.drawn > 0.1:
            self._refresh()  # not on every batch of a fast loop: the ticker catches up

    def _refresh(self) -> None:
        from edgepipe.native_logs import stderr_lock

        if stderr_lock.acquire(blocking=False):
            try:
                self.drawn = time.monotonic()
                self.bar.refresh()
            finally:
                stderr_lock.release()

    def _tick(self) -> None:
        while not self.stopped.wait(0.5):
            self._refresh()

    def close(self) -> None:
        self.stopped.set()
        self.ticker.join()
        self.bar.stop()
