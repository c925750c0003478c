"""The ingest task adapter: an unreadable file fails the task for good (a retry cannot help), a
warehouse write that failed and was rolled back is raised as is, so Airflow's retry runs."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from recops.app import tasks
from recops.core.settings import Settings
from recops.ingestion.shop_files import write_shop


def test_an_unreadable_file_fails_the_task_without_a_retry(tmp_path: Path) -> None:
    bad = tmp_path / "events.csv"
    bad.write_text("user_id,item_id,event_at\nu1,i1,2026-01-01T00:00:00Z\n")  # no event_type column
    settings = Settings(home=tmp_path / "home", profile="embedded")
    with pytest.raises(AirflowFailException, match="event_type") as failure:
        tasks.ingest(source="events", data_path=str(bad), catalog_path=None, settings=settings)
    assert str(bad) in str(failure.value)


CHILD = """
import resource, sys
from pathlib import Path
from recops.app import tasks
from recops.core.settings import Settings
from recops.ingestion import BatchWriteError
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), int(sys.argv[3])))
try:
    tasks.ingest(source="events", data_path=sys.argv[2], catalog_path=None,
                 settings=Settings(home=Path(sys.argv[1]), profile="embedded"))
except BatchWriteError as exc:
    print("BatchWriteError:", exc)
"""


def test_a_failed_warehouse_write_is_left_to_the_tasks_retry(tmp_path: Path) -> None:
    small = write_shop(tmp_path / "small", users=20, items=20, days=5, seed=1, fmt="parquet")
    shop = write_shop(tmp_path / "shop", users=1500, items=200, days=40, seed=3, fmt="parquet")
    home = tmp_path / "home"
    settings = Settings(home=home, profile="embedded")
    tasks.ingest(source="events", data_path=small["events"], catalog_path=None, settings=settings)
    room = settings.warehouse_path.stat().st_size + 64 * 1024
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOPS_")}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(home), str(Path(shop["events"])), str(room)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "BatchWriteError:" in proc.stdout and "was not loaded, nothing of it was kept" in proc.stdout
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] == resource.RLIM_INFINITY  # the limit stayed in the child
