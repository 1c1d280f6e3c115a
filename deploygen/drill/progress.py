"""What the drill is doing, on one line of a terminal: `[3/9] lock wait longer than lock_timeout...`.

Only when the stream is a terminal: a log or a pipe (CI, the tests) gets nothing, so that what it
holds is the report and the errors. The line is rewritten in place (`\\r`, then erase to its end)
and cleared when the drill ends, whatever ends it, so that the report or an error starts on a
clean line. Scenarios run at the same time: the line names the one that started last, and counts
the others still running.
"""

from __future__ import annotations

import os
import shutil
import threading
from typing import TextIO

CLEAR = "\r\x1b[K"


class Progress:
    def __init__(self, stream: TextIO | None, total: int = 0) -> None:
        self.stream = stream if stream is not None and _is_terminal(stream) else None
        self.total = total
        self.done = 0
        self.running: list[str] = []
        self.what = ""
        self._lock = threading.Lock()

    @property
    def shown(self) -> bool:
        return self.stream is not None

    def phase(self, what: str) -> None:
        """A step that is not a scenario (starting the servers)."""
        with self._lock:
            self.what = what
            self._draw()

    def started(self, name: str) -> None:
        with self._lock:
            self.running.append(name)
            self.what = ""
            self._draw()

    def ended(self, name: str) -> None:
        with self._lock:
            if name in self.running:
                self.running.remove(name)
            self.done += 1
            self._draw()

    def close(self) -> None:
        with self._lock:
            if self.stream is not None:
                self._write(CLEAR)
            self.stream = None

    def line(self) -> str:
        """The text shown now, cut to the terminal's width (a wrapped line could not be rewritten)."""
        what = self.what
        if self.running:  # the newest first, which is what just changed; the others counted
            others = len(self.running) - 1
            what = self.running[-1] + (f" (+{others} running)" if others else "")
        text = f"[{self.done}/{self.total}]" + (f" {what}..." if what else "")
        width = _width(self.stream) - 1
        return text if len(text) <= width else text[:max(0, width - 3)] + "..."

    def _draw(self) -> None:
        if self.stream is not None:
            self._write(CLEAR + self.line())

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # the terminal went away: the drill goes on without it
            self.stream = None


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _width(stream: TextIO | None) -> int:
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        columns = 0
    # A terminal that never said its size (a new pty) says 0 columns.
    return columns if columns > 0 else shutil.get_terminal_size().columns
