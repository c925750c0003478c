"""The API's append-only logs: lines reach disk, files close (and only closed files are read)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from recops.core.applog import PART, AppendLog, closed_files


def _lines(paths: list[Path]) -> list[dict]:
    return [json.loads(line) for p in paths for line in p.read_text().splitlines()]


def test_written_through_lines_are_on_disk_but_not_readable_until_closed(tmp_path) -> None:
    log = AppendLog(tmp_path, "feedback", flush_seconds=0.0, rotate_seconds=3600)
    log.write({"n": 1})
    parts = list(tmp_path.glob(f"*{PART}"))
    assert len(parts) == 1 and _lines(parts) == [{"n": 1}]
    assert closed_files(tmp_path, "feedback") == []  # still growing: ingestion must not read it
    log.close()
    assert _lines(closed_files(tmp_path, "feedback")) == [{"n": 1}]
    assert not list(tmp_path.glob(f"*{PART}"))


def test_rotation_by_lines_keeps_every_line_in_order(tmp_path) -> None:
    log = AppendLog(tmp_path, "served", flush_seconds=0.0, rotate_lines=3)
    for n in range(7):
        log.write({"n": n})
    log.close()
    files = closed_files(tmp_path, "served")
    assert len(files) == 3
    assert [r["n"] for r in _lines(files)] == list(range(7))


def test_tick_flushes_and_closes_an_idle_log(tmp_path) -> None:
    log = AppendLog(tmp_path, "served", flush_seconds=0.5, rotate_seconds=0.8)
    log.write({"n": 1})
    log.write({"n": 2})
    assert not list(tmp_path.iterdir())  # buffered (at most flush_seconds)
    log.tick()
    assert not list(tmp_path.iterdir())  # not due yet
    time.sleep(0.55)
    log.tick()
    assert _lines(list(tmp_path.glob(f"*{PART}"))) == [{"n": 1}, {"n": 2}]
    time.sleep(0.85)  # the part opened at the flush
    log.tick()  # no new request: the part is closed anyway, so the next run reads it
    assert _lines(closed_files(tmp_path, "served")) == [{"n": 1}, {"n": 2}]


def test_two_workers_never_share_a_file(tmp_path) -> None:
    a = AppendLog(tmp_path, "feedback", flush_seconds=0.0)
    b = AppendLog(tmp_path, "feedback", flush_seconds=0.0)
    a.write({"w": "a"})
    b.write({"w": "b"})
    a.close()
    b.close()
    files = closed_files(tmp_path, "feedback")
    assert len(files) == 2 and sorted(r["w"] for r in _lines(files)) == ["a", "b"]
