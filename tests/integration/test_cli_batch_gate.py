"""A batch loaded with the CLI is gated like one the DAG loads (the README's way to load data).

On a copy of the shop home (a normal batch loaded and run): ``recops ingest events`` a batch with 5 %
of the usual rows, then ``recops run``: the run stops at ``validate_raw`` with a row-count alert in
``$RECOPS_HOME/alerts.jsonl`` and the batch is quarantined, out of the marts. ``recops quarantine
release BATCH --reason`` puts it back (recorded), and the next ``recops run`` goes through with it.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def scenario(shop_home, shop_home_copy, cli, parse_json, tmp_path_factory) -> dict:
    from recops.core.settings import Settings
    from recops.ingestion.batch import compute_batch_id

    home = shop_home_copy("cli-batch")
    settings = Settings(home=home)
    events = pd.read_parquet(shop_home.shop / "events.parquet")
    # the newest 5 % of the events again, a week later: new events, a twentieth of the usual batch
    small = events.sort_values("event_at").tail(len(events) // 20).copy()
    small["event_at"] = small["event_at"] + pd.Timedelta(days=7)
    path = tmp_path_factory.mktemp("small-batch") / "small.parquet"
    small.to_parquet(path, index=False)
    catalog = shop_home.shop / "catalog.parquet"
    batch_id = compute_batch_id("events", [path, catalog])

    cli(home, "ingest", "events", str(path), "--catalog", str(catalog))
    stopped = cli(home, "run", check=False)
    alerts = [json.loads(line) for line in settings.alerts_path.read_text().splitlines()]
    before_release = parse_json(cli(home, "quarantine", "show", batch_id, "--json").stdout)
    released = parse_json(
        cli(home, "quarantine", "release", batch_id, "--reason", "a quiet week, checked with the shop", "--json").stdout
    )
    after = parse_json(cli(home, "run").stdout)
    return {"settings": settings, "batch_id": batch_id, "rows": len(small), "usual": len(events),
            "stopped": stopped, "alerts": alerts, "before_release": before_release, "released": released,
            "after": after, "newest": events["event_at"].max().to_pydatetime().replace(tzinfo=None)}


def _batch(settings, batch_id: str) -> dict:
    from recops.core.warehouse import Warehouse

    with Warehouse(settings, read_only=True) as wh:
        return wh.query_df("select * from raw.batches where batch_id = ?", [batch_id]).iloc[0].to_dict()


def _interactions_after(settings, newest) -> int:
    from recops.core.warehouse import Warehouse

    with Warehouse(settings, read_only=True) as wh:
        return int(wh.scalar("select count(*) from main.fct_interactions where event_at > ?", [newest]))


def test_the_run_after_a_cli_loaded_small_batch_stops_at_the_raw_gate(scenario) -> None:
    stopped = scenario["stopped"]
    assert stopped.returncode == 1, stopped.stdout[-2000:]
    assert "validate_raw" in stopped.stderr + stopped.stdout
    gate = [a for a in scenario["alerts"] if a["kind"] == "quality_gate" and a["stage"] == "raw"]
    assert len(gate) == 1, [a["title"] for a in scenario["alerts"]]
    assert gate[0]["severity"] == "error" and gate[0]["quarantined_batch_ids"] == [scenario["batch_id"]]
    assert gate[0]["batch_ids"] == [scenario["batch_id"]]  # the one batch nobody had gated yet
    failures = {f["expectation"]: f for f in gate[0]["failures"]}
    assert set(failures) == {"expect_table_row_count_to_be_between"}
    row_count = failures["expect_table_row_count_to_be_between"]
    assert row_count["observed"] == scenario["rows"] and row_count["batch_id"] == scenario["batch_id"]
    assert row_count["threshold"]["min_value"] == math.ceil(0.5 * scenario["usual"])  # the one usual batch
    shown = scenario["before_release"]
    assert shown["status"] == "quarantined" and "row_count" in json.dumps(shown)


def test_release_is_recorded_and_the_next_run_takes_the_batch(scenario) -> None:
    released = scenario["released"]
    assert released["status"] == "loaded" and released["gate_status"] == "released"
    assert released["reason"] == "a quiet week, checked with the shop" and released["origin"] == "cli"
    assert scenario["after"]["state"] == "success", scenario["after"]
    batch = _batch(scenario["settings"], scenario["batch_id"])
    assert batch["status"] == "loaded" and batch["gate_status"] == "released"
    # in the marts now: the small batch is the only data after the shop's newest event
    assert _interactions_after(scenario["settings"], scenario["newest"]) > 0
