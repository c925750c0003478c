"""Append-only JSON-lines logs the API writes for the next pipeline run: the served-list log and
the feedback log.

The contract between the API (which writes them) and ingestion (which loads them). Each worker
process appends to its own open part file (``<name>-<time>-<pid>-<n>.jsonl.part``) and
closes it by renaming it to ``.jsonl`` after ``rotate_seconds`` or ``rotate_lines`` lines, and when
the worker stops. Ingestion reads closed files only, so a file is never read while it grows and
nothing written is ever lost between a read and a move. Writes are buffered in memory for at most
``flush_seconds`` (the served log: :meth:`AppendLog.tick`, which the API calls every second from a
thread, writes them, so a request never waits for the disk) or written through at once (feedback:
``flush_seconds=0``, on disk before the API answers).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import orjson

PART = ".part"
CLOSED = ".jsonl"
FEEDBACK_LOG = "feedback"  # under settings.feedback_dir
SERVED_LOG = "served"  # under settings.served_dir


class AppendLog:
    """One process's rotating JSON-lines log in ``folder``."""

    def __init__(
        self, folder: Path, name: str, *, flush_seconds: float, rotate_seconds: float = 60.0, rotate_lines: int = 50_000
    ) -> None:
        self.folder = Path(folder)
        self.name = name
        self.flush_seconds = flush_seconds
        self.rotate_seconds = rotate_seconds
        self.rotate_lines = rotate_lines
        self._buffer: list[str] = []
        self._lock = threading.Lock()  # the buffer (held for an append or a swap only)
        self._io_lock = threading.Lock()  # the part file: writes, fsync, rotation
        self._part: Path | None = None
        self._opened = 0.0
        self._lines = 0
        self._sequence = 0
        self._last_flush = time.monotonic()

    def write(self, record: dict[str, Any]) -> None:
        """Buffer one record; written through at once when ``flush_seconds`` is 0. A buffered
        log is written by :meth:`tick` (or here, should no tick have come for 5 x flush_seconds)."""
        line = orjson.dumps(record, default=str).decode()
        with self._lock:
            self._buffer.append(line)
            overdue = time.monotonic() - self._last_flush >= 5 * self.flush_seconds
        if self.flush_seconds <= 0 or overdue:
            self.flush()

    def write_many(self, records: list[dict[str, Any]]) -> None:
        lines = [orjson.dumps(r, default=str).decode() for r in records]
        with self._lock:
            self._buffer.extend(lines)
        self.flush()

    def flush(self) -> None:
        with self._io_lock:
            self._write(self._take())

    def tick(self) -> None:
        """Flush a buffer older than ``flush_seconds`` and close a part older than
        ``rotate_seconds``, even with no new write (the API calls it every second, so an idle
        worker's lines reach disk and the next run)."""
        with self._io_lock:
            if time.monotonic() - self._last_flush >= self.flush_seconds:
                self._write(self._take())
            if self._part is not None and time.monotonic() - self._opened >= self.rotate_seconds:
                self._rotate()

    def close(self) -> None:
        """Flush and close the open part (a worker stopping)."""
        with self._io_lock:
            self._write(self._take())
            self._rotate()

    def _take(self) -> list[str]:
        with self._lock:
            lines, self._buffer = self._buffer, []
            self._last_flush = time.monotonic()
        return lines

    def _write(self, lines: list[str]) -> None:
        """Append ``lines`` to the open part (``_io_lock`` held), on disk when it returns."""
        if not lines:
            return
        if self._part is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._sequence += 1
            self._part = self.folder / f"{self.name}-{time.time_ns()}-{os.getpid()}-{self._sequence}{CLOSED}{PART}"
            self._opened = time.monotonic()
            self._lines = 0
        with self._part.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._lines += len(lines)
        if self._lines >= self.rotate_lines or time.monotonic() - self._opened >= self.rotate_seconds:
            self._rotate()

    def _rotate(self) -> None:
        if self._part is not None and self._part.exists():
            os.replace(self._part, self._part.with_name(self._part.name.removesuffix(PART)))
        self._part = None


def closed_files(folder: Path, name: str) -> list[Path]:
    """The closed (complete) files of a log, oldest first."""
    if not folder.exists():
        return []
    return sorted(folder.glob(f"{name}-*{CLOSED}"), key=lambda p: p.name)
