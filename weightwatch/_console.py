"""Terminal output shared by every command: strict JSON and a progress bar."""

from __future__ import annotations

import json
import sys

from ._files import jsonable


def json_text(obj, indent: int | None = 2) -> str:
    """Strict JSON of ``obj``: NaN and infinities as ``null`` (the standard has no NaN), numpy values as
    Python ones; an object JSON cannot hold raises ``TypeError``."""
    return json.dumps(jsonable(obj, nan_to_none=True, enum_as=str), indent=indent, allow_nan=False)


def print_json(obj) -> None:
    """Print ``obj`` as strict JSON on stdout."""
    print(json_text(obj))


class ProgressBar:
    """A rich progress bar with an ETA while stdout is a terminal; nothing at all otherwise.

    Use as a context manager; :meth:`advance` counts steps done, :meth:`set` moves to a
    step (and may change the total). ``enabled=False`` (``--quiet``) turns it off.
    """

    def __init__(self, description: str, total: float | None, done: float = 0, *, enabled: bool = True,
                 stream=None):
        stream = stream if stream is not None else sys.stdout
        self.enabled = bool(enabled) and _is_terminal(stream)
        self.description, self.total, self.done = description, total, done
        self._progress = self._task = None
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                      console=Console(file=stream), transient=True)

    def start(self) -> "ProgressBar":
        if self._progress is not None and self._task is None:
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total, completed=self.done)
        return self

    def set(self, done: float, total: float | None = None, description: str | None = None) -> None:
        """Move to ``done`` steps of ``total`` (unchanged when ``None``)."""
        self.done = done
        if total is not None:
            self.total = total
        if self._task is not None:
            self._progress.update(self._task, completed=done, total=self.total,
                                  description=description or self.description)

    def advance(self, steps: float = 1, description: str | None = None) -> None:
        self.set(self.done + steps, description=description)

    update = advance  # zoo builds report runs finished through ``update(runs)``

    def close(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.stop()
            self._task = None

    def __enter__(self) -> "ProgressBar":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
