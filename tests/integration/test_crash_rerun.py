"""A pipeline killed mid-task (``kill -9`` while dbt builds the marts) and run again ends with the
same tables as a run that was never interrupted.

The uninterrupted run is the session's shop home; this module loads the very same shop files into a
fresh home with ``recops run``, kills the whole process group (the DAG runs its tasks in that child
process) once ``dbt_build`` has been running for a few seconds, then runs ``recops run`` again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MARTS = ("fct_interactions", "dim_items", "dim_users", "ml_user_features", "ml_item_features",
         "ml_user_item_features", "ml_ltr_labels")  # fmt: skip


def _tables(home: Path) -> dict[str, pd.DataFrame]:
    from recops.core.settings import Settings
    from recops.core.warehouse import Warehouse

    out = {}
    with Warehouse(Settings(home=home), read_only=True) as wh:
        for table in MARTS:
            out[table] = wh.query_df(f"select * from main.{table}")
    # an item only the catalogue names was first seen when its catalogue was loaded: a wall-clock
    # time, different for every load of the same file; everything else comes from the data
    items = out["dim_items"]
    catalogue_only = ~items["item_id"].isin(out["fct_interactions"]["item_id"])
    assert catalogue_only.mean() < 0.1
    out["dim_items"] = items.assign(first_seen_at=items["first_seen_at"].where(~catalogue_only))
    return {t: f.sort_values(list(f.columns)).reset_index(drop=True) for t, f in out.items()}


@pytest.fixture(scope="module")
def crashed_then_rerun(shop_home, tmp_path_factory, cli, parse_json) -> dict:
    home = tmp_path_factory.mktemp("crash") / "home"
    home.mkdir()
    shop = shop_home.shop
    env = {**os.environ, "RECOPS_HOME": str(home)}
    recops = str(Path(sys.executable).with_name("recops"))
    proc = subprocess.Popen(
        [recops, "run", "--source", "events", "--data", str(shop / "events.parquet"),
         "--catalog", str(shop / "catalog.parquet")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 600
    killed_in = None
    while killed_in is None:
        assert proc.poll() is None, "the run ended before dbt_build started"
        assert time.monotonic() < deadline, "dbt_build never started"
        logs = sorted((home / "logs").glob("recops_pipeline-*.log")) if (home / "logs").exists() else []
        if logs and "starting task_id=dbt_build" in logs[-1].read_text(errors="replace"):
            time.sleep(3)  # mid-way through the build
            killed_in = logs[-1]
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.2)
    proc.wait(timeout=60)
    log = killed_in.read_text(errors="replace")
    rerun = parse_json(cli(home, "run").stdout)
    return {"home": home, "returncode": proc.returncode, "log": log, "rerun": rerun}


def test_the_kill_hit_the_dbt_task(crashed_then_rerun) -> None:
    assert crashed_then_rerun["returncode"] == -signal.SIGKILL
    log = crashed_then_rerun["log"]
    assert "starting task_id=dbt_build" in log and "end task task_id=dbt_build" not in log


def test_the_rerun_equals_an_uninterrupted_run(crashed_then_rerun, shop_home) -> None:
    assert crashed_then_rerun["rerun"]["state"] == "success"
    got, want = _tables(crashed_then_rerun["home"]), _tables(shop_home.home)
    for table in MARTS:
        assert len(got[table]) > 0, table
        pd.testing.assert_frame_equal(got[table], want[table], obj=table)
