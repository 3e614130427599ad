"""The ``edgepipe`` command: one Typer app per command group, joined here.

Exit codes (``edgepipe.errors.EXIT_CODES``): 0 success; 1 an expected failure
(``EdgepipeError``); 2 a usage error; 3 partly done (some formats or variants made, others
failed: each failure is named); 4 a backend missing; 5 a device or server unreachable;
70 an internal error (a bug); 130 interrupted (Ctrl-C); 143 terminated (SIGTERM), 129 (SIGHUP). An interruption runs every
clean-up, so nothing half-written is left in OUT. Heavy libraries are imported inside the commands so ``--help`` is fast.
"""

from __future__ import annotations

import logging
import signal
import sys
import traceback
from typing import Annotated, Any

import typer

from edgepipe import __version__, native_logs
from edgepipe.cli import common, deprecated
from edgepipe.cli.compress_cmd import compress
from edgepipe.cli.env_cmd import env
from edgepipe.cli.eval_cmd import eval_artifact
from edgepipe.cli.export_cmd import HELP as EXPORT_HELP
from edgepipe.cli.export_cmd import export
from edgepipe.cli.help import HelpCommand, HelpGroup
from edgepipe.cli.inspect_cmd import inspect
from edgepipe.cli.profile_cmd import profile
from edgepipe.cli.run_cmd import run_recipe_cmd
from edgepipe.cli.serve_cmd import export_triton, serve
from edgepipe.cli.split_cmd import split_app
from edgepipe.cli.targets_cmd import targets_app
from edgepipe.errors import EXIT_INTERNAL, EdgepipeError, Terminated, backend_missing

app = typer.Typer(
    name="edgepipe",
    help="Take a trained neural network to the edge: compress, split, export, profile.\n\n"
    "The global options --debug, -q/--quiet and -v/--verbose go before the command or "
    "anywhere after it. Long steps show progress bars on stderr when it is a terminal "
    "(not with -q); the backends' own log lines (absl, TensorFlow/LiteRT, XNNPACK, "
    "oneDNN, OpenVINO) are kept off stderr unless -v, their warnings and errors aside.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=HelpGroup,
)


def _version(value: bool) -> None:
    if value:
        print(f"edgepipe {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and debug logs.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only results and errors: no progress "
                           "bars, no info logs or warnings.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Info logs, and the backends' own log "
                           "lines (absl, TensorFlow/LiteRT, XNNPACK, oneDNN, OpenVINO).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """edgepipe: compress, split, export and profile models for edge devices."""
    if quiet and verbose:
        raise typer.BadParameter("-q/--quiet and -v/--verbose exclude each other: give one.",
                                 param_hint="-q / -v")
    if debug:
        common.state.debug = True
    common.state.quiet, common.state.verbose = quiet, verbose


app.command("inspect", cls=HelpCommand)(inspect)
app.command("env", cls=HelpCommand)(env)
app.command("export", help=EXPORT_HELP, cls=HelpCommand)(export)
app.command("compress", cls=HelpCommand)(compress)
app.command("eval", cls=HelpCommand)(eval_artifact)
app.command("profile", cls=HelpCommand)(profile)
app.add_typer(targets_app, name="targets")
app.add_typer(split_app, name="split")
app.command("serve", cls=HelpCommand)(serve)
app.command("export-triton", cls=HelpCommand)(export_triton)
app.command("run", cls=HelpCommand)(run_recipe_cmd)


def run(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns (and, from the shell, exits with) the exit code.

    Typer handles usage errors itself (exit 2, with its own message); expected failures
    (``EdgepipeError``) are rendered here without a traceback unless ``--debug``.
    """
    args, renamed = deprecated.rewrite(sys.argv[1:] if argv is None else list(argv))
    args = global_options_first(args)
    common.state.quiet, common.state.verbose = "--quiet" in args, "--verbose" in args
    for warning in [] if common.state.quiet else renamed:  # an old spelling, for one release
        common.stderr.print(f"[yellow]warning:[/] {common.escape(warning)}")
    if "--debug" in args:
        common.state.debug = True
    if not (common.state.verbose or common.state.debug):
        # absl, TensorFlow/LiteRT, XNNPACK and oneDNN log from C++ straight to stderr, and
        # torch's CUDA build warns on CPU-only hosts when torchao loads its extensions.
        native_logs.silence()
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    previous = _handle_termination()
    try:
        code = _dispatch(args)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if argv is None:
        sys.exit(code)
    return code


# The global options (the app callback's), taken before the subcommand or anywhere after it.
GLOBAL_FLAGS = {"--debug": "--debug", "-q": "--quiet", "--quiet": "--quiet",
                "-v": "--verbose", "--verbose": "--verbose"}


def global_options_first(args: list[str]) -> list[str]:
    """``args`` with the global flags moved before the subcommand (their long spelling,
    once each), and ``--json`` (every command's own option) moved after it when given
    before; nothing after a ``--`` is touched."""
    end = args.index("--") if "--" in args else len(args)
    found = [GLOBAL_FLAGS[a] for a in args[:end] if a in GLOBAL_FLAGS]
    rest = [a for a in args[:end] if a not in GLOBAL_FLAGS]
    first_word = next((i for i, a in enumerate(rest) if not a.startswith("-")), None)
    if first_word is not None and "--json" in rest[:first_word]:
        rest = [a for a in rest if a != "--json"] + ["--json"]
    return [*dict.fromkeys(found), *rest, *args[end:]]


_RECEIVED: list[int] = []  # the termination signals received during this run


def _terminate(signum: int, _frame: object) -> None:
    _RECEIVED.append(signum)
    raise Terminated(signum)


def _ctrl_c(signum: int, _frame: object) -> None:
    """Ctrl-C as Python's own handler does it (KeyboardInterrupt), remembered in case the
    exception is swallowed where Python cannot propagate it."""
    _RECEIVED.append(signum)
    raise KeyboardInterrupt


def _unraisable(hook: Any) -> Any:
    """``sys.unraisablehook`` that stays quiet about a termination raised where Python
    cannot propagate it (a garbage-collector callback): :func:`_dispatch` reports it once
    the command returns."""

    def quiet(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, (Terminated, KeyboardInterrupt)):
            hook(unraisable)

    return quiet


def _handle_termination() -> dict[int, object]:
    """SIGTERM and SIGHUP unwind like Ctrl-C (clean-ups run); the old handlers, to restore."""
    previous: dict[int, object] = {}
    for signum, handler in ((signal.SIGTERM, _terminate), (signal.SIGHUP, _terminate),
                            (signal.SIGINT, _ctrl_c)):
        if signum == signal.SIGINT and signal.getsignal(signum) is not signal.default_int_handler:
            continue  # Ctrl-C ignored or handled by whoever started us: leave it so
        try:
            previous[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread (a library caller's worker)
            break
    return previous


def _dispatch(args: list[str]) -> int:
    _RECEIVED.clear()
    hook, sys.unraisablehook = sys.unraisablehook, _unraisable(sys.unraisablehook)
    try:
        code = _run_app(args)
    finally:
        sys.unraisablehook = hook
    if _RECEIVED and code == 0:  # the signal's exception was swallowed: say it was received
        signum = _RECEIVED[0]
        return common.interrupted(KeyboardInterrupt() if signum == signal.SIGINT
                                  else Terminated(signum))
    return code


def _run_app(args: list[str]) -> int:
    try:
        app(args=args, prog_name="edgepipe", standalone_mode=True)
        return 0
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except EdgepipeError as error:
        if common.state.debug:
            traceback.print_exc()
        common.report_error(error)
        return error.exit_code
    except KeyboardInterrupt as exc:
        return common.interrupted(exc)
    except Exception as error:  # a bug in edgepipe or in a backend
        if common.state.debug:
            traceback.print_exc()
        missing = backend_missing(error)
        if missing is not None:  # an optional backend that is not installed
            common.report_error(missing)
            return missing.exit_code
        common.report_error(
            EdgepipeError(
                f"Unexpected {type(error).__name__}: {error}",
                hint="this is a bug in edgepipe or a backend; rerun with --debug for the "
                "traceback and report it.",
                reference="internal-error",
            )
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # python -m edgepipe.cli.main
    run()
