"""Logging setup and a progress display for multi-stage work.

Library modules only call ``logging.getLogger(__name__)``; the command-line tools call
:func:`setup_logging` once.  :func:`stage_progress` shows a rich progress bar on stderr when it is
a terminal and output is not quiet; elsewhere (tests, pipes, CI logs) it is silent.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator, Sequence

#: Third-party loggers that are chatty at INFO; kept at WARNING unless debugging.
NOISY = ("torch", "torch.onnx", "onnxscript", "onnx_ir", "onnxsim", "coremltools", "urllib3")

_HANDLER_FLAG = "_pipeline_handler"

#: coremltools' import-time notices that are expected on Linux (no Core ML runtime) and with a
#: torch newer than it was tested with; they say nothing about the user's model.
_EXPECTED_NOTICES = ("Failed to load _ML", "has not been tested with coremltools")


class _ExpectedNoticeFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("coremltools") and record.levelno < logging.ERROR:
            return not any(n in record.getMessage() for n in _EXPECTED_NOTICES)
        return True


def level_for(verbose: int = 0, quiet: bool = False, debug: bool = False) -> int:
    """WARNING by default, INFO with -v, DEBUG with -vv or --debug, ERROR with --quiet."""
    if debug or verbose >= 2:
        return logging.DEBUG
    if quiet:
        return logging.ERROR
    return logging.INFO if verbose == 1 else logging.WARNING


def setup_logging(level: int = logging.WARNING, *, rich: bool | None = None) -> None:
    """Send log records to stderr (rich formatting on a terminal); idempotent."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_FLAG, False):
            root.removeHandler(old)
    use_rich = sys.stderr.isatty() if rich is None else rich
    handler: logging.Handler
    if use_rich:
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(console=Console(stderr=True), show_path=False, show_time=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    setattr(handler, _HANDLER_FLAG, True)
    handler.addFilter(_ExpectedNoticeFilter())
    root.addHandler(handler)
    root.setLevel(level)
    for name in NOISY:
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else max(level, logging.WARNING))


@contextlib.contextmanager
def stage_progress(stages: Sequence[str], *, enabled: bool | None = None,
                   title: str = "") -> Iterator[Callable[[str], None]]:
    """Yield a callback ``advance(stage_name)`` driving a progress bar over ``stages``.

    ``enabled=None`` shows the bar only when stderr is a terminal.
    """
    show = sys.stderr.isatty() if enabled is None else enabled
    if not show:
        yield lambda _name: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=Console(stderr=True), transient=True,
    )
    task = progress.add_task(title, total=len(stages))
    seen: list[str] = []

    def advance(name: str) -> None:
        if seen:
            progress.advance(task)
        seen.append(name)
        progress.update(task, description=f"{title} {name}".strip())

    with progress:
        yield advance
        progress.update(task, completed=len(stages))
