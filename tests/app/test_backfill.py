"""``recops backfill``'s intervals: which ends it runs, in which order, and what it refuses before
running anything (each interval's run is a whole ``recops_pipeline`` run, tested elsewhere)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from recops.app.run import backfill_ends


def _midnights(*days: str) -> list[datetime]:
    return [datetime.fromisoformat(d).replace(tzinfo=UTC) for d in days]


def test_every_interval_end_from_the_oldest_on() -> None:
    ends = backfill_ends(date(2024, 3, 1), date(2024, 3, 3))
    assert ends == _midnights("2024-03-01", "2024-03-02", "2024-03-03")
    assert all(e.tzinfo is UTC and (e.hour, e.minute) == (0, 0) for e in ends)


def test_every_n_days_up_to_the_last_step_that_fits() -> None:
    assert backfill_ends(date(2024, 3, 1), date(2024, 3, 8), every_days=3) == _midnights(
        "2024-03-01", "2024-03-04", "2024-03-07")
    assert backfill_ends(date(2024, 2, 27), date(2024, 3, 2), every_days=2) == _midnights(  # a leap day
        "2024-02-27", "2024-02-29", "2024-03-02")
    assert backfill_ends(date(2024, 3, 1), date(2024, 3, 1), every_days=7) == _midnights("2024-03-01")


def test_a_backwards_range_or_a_zero_step_is_refused() -> None:
    with pytest.raises(ValueError, match="--to 2024-03-01 is before --from 2024-03-05"):
        backfill_ends(date(2024, 3, 5), date(2024, 3, 1))
    with pytest.raises(ValueError, match="--every must be at least 1"):
        backfill_ends(date(2024, 3, 1), date(2024, 3, 5), every_days=0)


def test_the_command_stops_before_any_run(tmp_path, cli) -> None:
    home = tmp_path / "home"
    proc = cli(home, "backfill", "--from", "2024-03-05", "--to", "2024-03-01", check=False)
    assert proc.returncode == 1
    assert "backfill stopped" in proc.stderr + proc.stdout and "is before --from 2024-03-05" in proc.stderr + proc.stdout
    assert not (home / "airflow").exists() and not (home / "logs").exists()  # no Airflow, no run log
