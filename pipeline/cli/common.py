"""Shared command-line plumbing: logging flags, one-line errors, progress.

Every tool builds its parser with :func:`make_parser` (adds ``--debug``, ``-v/--verbose``,
``-q/--quiet``) and runs its body through :func:`run`, which turns a :class:`PipelineError` into
one line on stderr and the error's exit code; a traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TextIO

from pipeline.errors import PipelineError
from pipeline.logs import level_for, setup_logging

log = logging.getLogger(__name__)

# torch's OpenMP threads spin at barriers by default; on a busy build box that multiplies the
# executor's wall time (measured: resnet50 7.6x onnxruntime spinning, 0.8x passive).  Set before
# torch is first imported; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

#: Exit code of an unexpected (non-PipelineError) failure: a bug, reported in one line too.
INTERNAL_ERROR = 3
INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line plus a hint, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def make_parser(prog: str, description: str, epilog: str = "") -> argparse.ArgumentParser:
    """A parser with the common flags; ``epilog`` holds examples (kept verbatim)."""
    parser = _Parser(
        prog=prog, description=description, epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    group = parser.add_argument_group("output and diagnostics")
    group.add_argument("-v", "--verbose", action="count", default=0,
                       help="more log output: -v shows each stage, -vv everything")
    group.add_argument("-q", "--quiet", action="store_true",
                       help="print nothing but errors")
    group.add_argument("--debug", action="store_true",
                       help="show full tracebacks and debug logs on failure")
    return parser


def configure(args: argparse.Namespace) -> None:
    """Set up logging from the common flags."""
    setup_logging(level_for(args.verbose, args.quiet, args.debug))


def show_progress(args: argparse.Namespace) -> bool | None:
    """Progress bar policy: never when quiet, else only on a terminal."""
    return False if args.quiet else None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def run(body: Callable[[argparse.Namespace], int], args: argparse.Namespace | int,
        stderr: TextIO | None = None) -> int:
    """Run a tool's body; errors become one line on stderr and a non-zero exit code.

    ``args`` may be the exit code :func:`parse` returned (``--help``, usage error): passed through.
    """
    if isinstance(args, int):
        return args
    err = stderr if stderr is not None else sys.stderr
    debug = bool(getattr(args, "debug", False))
    try:
        return body(args)
    except PipelineError as exc:
        if debug:
            traceback.print_exc(file=err)
        err.write(f"error: {_one_line(str(exc))}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        err.write("error: interrupted\n")
        return INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last guard: no traceback without --debug
        if debug:
            traceback.print_exc(file=err)
        err.write(
            f"error: internal error {type(exc).__name__}: {_one_line(str(exc))[:300]} "
            "(rerun with --debug and report it)\n"
        )
        return INTERNAL_ERROR


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace | int:
    """Parse ``argv`` (None: sys.argv[1:]) and configure logging.

    Returns:
        the arguments, or an exit code when parsing ended the run (``--help``: 0, a usage
        error: 2, already reported on one line).
    """
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    configure(args)
    return args
