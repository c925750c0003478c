"""The quality gates inside the real ``recops_pipeline`` DAG: one bad batch per kind, ingested and
run through the whole DAG (``recops run``: Airflow ``dag.test()`` in a child process).

One RECOPS_HOME for the module. A small synthetic shop (130 days, so its 90-day features have
settled) is cut by time into a long history and four 15-day batches of similar size. The history
and the first two batches are ingested; the third goes through the DAG as the clean baseline.
Each bad batch is then derived from a clean one and run through the DAG, in this order:

============  ===============================================  ==================================
run           batch                                            stops at
============  ===============================================  ==================================
clean         batch 3 as delivered                             (succeeds, no alert)
row_faults    batch 4 with nulls in user_id / item_id,         validate_raw (error)
              negative prices, event type 'teleport',
              events in 2099
schema        batch 4 without session_id, price renamed        validate_raw (error)
unreadable    batch 4 without event_type (a required column)   ingest (IngestError)
row_drop      every 10th row of batch 4 (a 90% drop)           validate_raw (error)
duplicate     batch 3 again, rows reversed (new bytes)         validate_raw (error)
drift         batch 4 with prices x50 and a sale (every view   validate_training_set (error)
              became a purchase)
recovery      batch 4 plus 300 rows of batch 3 (15% overlap)   (succeeds with a warning)
============  ===============================================  ==================================

Every run is set to alert through all three channels: the JSON-lines file, a real webhook receiver
and a real SMTP server on 127.0.0.1. The recovery run shows that the next run starts from the last good
state: every failed batch is quarantined (its raw rows kept) and absent from the marts.

Where the loader itself rejects rows (a missing item id, an unknown event type, a negative price)
they never reach raw.events; they are kept in raw.quarantine and the raw gate checks their share
of the batch (``raw.quarantine`` suite), so the batch still stops the run and alerts.
"""

from __future__ import annotations

import json
import math
import sqlite3
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pandas as pd
import pytest

from recops.core.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.heavy]

DAG_ID = "recops_pipeline"
SHOP_DAYS = 130
HISTORY_DAYS = 70
BATCH_DAYS = 15
FUTURE = datetime(2099, 1, 1, 12, tzinfo=UTC)
PRICE_FACTOR = 50
OVERLAP_ROWS = 300
MAIL_TO = "ops@example.com"
MAIL_FROM = "recops@example.test"

GATES = ("validate_raw", "validate_marts", "validate_training_set")
AFTER_RAW = ("dbt_build", "validate_marts", "feast_apply", "build_training_set")
AFTER_TRAINING_SET = ("train_evaluate", "register_model", "promotion_gate")

SAME_COLUMN = "expect_column_values_to_be_between"
FILLED = "expect_column_proportion_of_non_null_values_to_be_between"
NOT_DUPLICATE = "expect_column_values_to_be_null"


# --- the bad batches (pure functions of clean ones) ----------------------------------------------
def row_faults(clean: pd.DataFrame) -> pd.DataFrame:
    """A tenth of the rows each: no item id, no user id, a negative price, an unknown event
    type; and five events dated 2099."""
    bad = clean.reset_index(drop=True).astype({"user_id": object, "item_id": object})
    position = pd.Series(range(len(bad))) % 10
    bad.loc[position == 0, "item_id"] = None
    bad.loc[position == 1, "user_id"] = None
    bad.loc[position == 2, "price"] = -bad.loc[position == 2, "price"]
    bad.loc[position == 3, "event_type"] = "teleport"
    bad.loc[bad.index[position == 4][:5], "event_at"] = pd.Timestamp(FUTURE)
    return bad


def schema_change(clean: pd.DataFrame) -> pd.DataFrame:
    """A new export: ``session_id`` is gone and ``price`` is now called ``cost``."""
    return clean.drop(columns=["session_id"]).rename(columns={"price": "cost"})


def unreadable(clean: pd.DataFrame) -> pd.DataFrame:
    """A required column missing: the loader cannot read the file at all."""
    return clean.drop(columns=["event_type"])


def row_drop(clean: pd.DataFrame) -> pd.DataFrame:
    """Every 10th row: a 90% drop in volume."""
    return clean.iloc[::10]


def duplicate(loaded: pd.DataFrame) -> pd.DataFrame:
    """An already loaded batch delivered again (rows reversed: other bytes, another batch id)."""
    return loaded.iloc[::-1]


def drift(clean: pd.DataFrame) -> pd.DataFrame:
    """Prices x50, and a sale: every view became a purchase (same rows, so the raw gate passes;
    the training set's newest label window and user features see the first week of it)."""
    shifted = clean.assign(price=clean["price"] * PRICE_FACTOR)
    shifted.loc[shifted["event_type"] == "view", "event_type"] = "purchase"
    return shifted


def with_overlap(clean: pd.DataFrame, loaded: pd.DataFrame) -> pd.DataFrame:
    """A clean batch that repeats ``OVERLAP_ROWS`` events of an earlier one (under 50%)."""
    return pd.concat([clean, loaded.iloc[:OVERLAP_ROWS]], ignore_index=True)


# --- what one DAG run left behind --------------------------------------------------------------
@dataclass
class Run:
    name: str
    data: Path
    rows: int
    batch_id: str
    returncode: int
    stderr: str
    seconds: float
    run_id: str | None = None
    tasks: dict[str, str] = field(default_factory=dict)
    tries: dict[str, int] = field(default_factory=dict)
    alerts: list[dict] = field(default_factory=list)
    webhooks: list[dict] = field(default_factory=list)
    mails: list[EmailMessage] = field(default_factory=list)


@dataclass
class Scenario:
    home: Path
    settings: Settings
    shop: Path
    catalog: Path
    batches: dict[str, Path]
    runs: dict[str, Run]
    history_batch_ids: list[str]
    smtp_envelopes: list[tuple[str, list[str]]]


def _read_alerts(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _last_dag_run(home: Path) -> tuple[str, dict[str, str], dict[str, int]]:
    """Run id, task states and try numbers of the newest run in Airflow's metadata database."""
    with sqlite3.connect(home / "airflow" / "airflow.db") as db:
        (run_id,) = db.execute(
            "select run_id from dag_run where dag_id = ? order by id desc limit 1", [DAG_ID]
        ).fetchone()
        rows = db.execute(
            "select task_id, state, try_number from task_instance where dag_id = ? and run_id = ?",
            [DAG_ID, run_id],
        ).fetchall()
    return run_id, {t: str(s) for t, s, _ in rows}, {t: int(n or 0) for t, _, n in rows}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, cli, make_webhook, make_mailbox) -> Scenario:
    webhook, smtp = make_webhook(), make_mailbox()
    from recops.ingestion import ingest_events
    from recops.ingestion.batch import compute_batch_id

    home = tmp_path_factory.mktemp("quality-dag-home")
    shop, data = home / "shop", home / "incoming"
    data.mkdir()
    cli(home, "generate", "--users", "200", "--items", "100", "--days", str(SHOP_DAYS),
        "--seed", "11", "--out", str(shop))  # fmt: skip
    catalog = shop / "catalog.parquet"
    events = pd.read_parquet(shop / "events.parquet")
    start = events["event_at"].min().normalize()
    day = (events["event_at"] - start).dt.days
    names = ["history", "b1", "b2", "b3", "b4"]
    edges = [0, *range(HISTORY_DAYS, SHOP_DAYS, BATCH_DAYS), SHOP_DAYS + 1]
    clean = {
        name: events[(day >= lo) & (day < hi)]
        for name, lo, hi in zip(names, edges[:-1], edges[1:], strict=True)
    }
    assert sum(len(f) for f in clean.values()) == len(events)
    frames = {
        **clean,
        "row_faults": row_faults(clean["b4"]),
        "schema": schema_change(clean["b4"]),
        "unreadable": unreadable(clean["b4"]),
        "row_drop": row_drop(clean["b4"]),
        "duplicate": duplicate(clean["b3"]),
        "drift": drift(clean["b4"]),
        "recovery": with_overlap(clean["b4"], clean["b3"]),
    }
    batches = {}
    for name, frame in frames.items():
        batches[name] = data / f"{name}.parquet"
        frame.to_parquet(batches[name], index=False)

    settings = Settings(home=home)
    history = [
        ingest_events(settings, batches[name], catalog).batch_id for name in ("history", "b1", "b2")
    ]
    env = {
        "RECOPS_ALERT_WEBHOOK_URL": webhook.url,
        "RECOPS_ALERT_WEBHOOK_RETRIES": "1",
        "RECOPS_ALERT_SMTP_HOST": smtp.host,
        "RECOPS_ALERT_SMTP_PORT": str(smtp.port),
        "RECOPS_ALERT_EMAIL_FROM": MAIL_FROM,
        "RECOPS_ALERT_EMAIL_TO": json.dumps([MAIL_TO]),
        # a 3-day holdout and 7-day label windows: the training set reaches the newest batches
        "RECOPS_HOLDOUT_DAYS": "3",
        "RECOPS_LABEL_WINDOW_DAYS": "7",
    }
    runs: dict[str, Run] = {}
    order = ["b3", "row_faults", "schema", "unreadable", "row_drop", "duplicate", "drift",
             "recovery"]  # fmt: skip
    for name in order:
        seen = (len(_read_alerts(settings.alerts_path)), len(webhook.bodies), len(smtp.messages))
        started = time.perf_counter()
        proc = cli(home, "run", "--source", "events", "--data", str(batches[name]),
                   "--catalog", str(catalog), extra_env=env, check=False)  # fmt: skip
        run = Run(
            name="clean" if name == "b3" else name,
            data=batches[name],
            rows=len(frames[name]),
            batch_id=compute_batch_id("events", [batches[name], catalog]),
            returncode=proc.returncode,
            stderr=proc.stderr,
            seconds=round(time.perf_counter() - started, 1),
        )
        run.run_id, run.tasks, run.tries = _last_dag_run(home)
        run.alerts = _read_alerts(settings.alerts_path)[seen[0] :]
        run.webhooks = list(webhook.bodies[seen[1] :])
        run.mails = list(smtp.messages[seen[2] :])
        runs[run.name] = run
    print({name: run.seconds for name, run in runs.items()})  # visible with -s
    return Scenario(
        home=home,
        settings=settings,
        shop=shop,
        catalog=catalog,
        batches=batches,
        runs=runs,
        history_batch_ids=history,
        smtp_envelopes=list(smtp.envelopes),
    )


# --- shared assertions ---------------------------------------------------------------------------
def query(scenario: Scenario, sql: str, params: list | None = None) -> pd.DataFrame:
    from recops.core.warehouse import Warehouse

    with Warehouse(scenario.settings, read_only=True) as wh:
        return wh.query_df(sql, params or [])


def batch_row(scenario: Scenario, batch_id: str) -> dict:
    rows = query(scenario, "select * from raw.batches where batch_id = ?", [batch_id])
    assert len(rows) == 1, f"batch {batch_id} not in raw.batches"
    return rows.iloc[0].to_dict()


def raw_counts(scenario: Scenario, batch_id: str, source_file: Path) -> tuple[int, int]:
    """(raw.events rows, raw.quarantine rows) of one batch's events file."""
    counts = query(
        scenario,
        "select (select count(*) from raw.events where batch_id = ? and source_file = ?) as e, "
        "(select count(*) from raw.quarantine where batch_id = ? and source_file = ?) as q",
        [batch_id, str(source_file), batch_id, str(source_file)],
    ).iloc[0]
    return int(counts["e"]), int(counts["q"])


def assert_stopped_at(run: Run, failed_task: str, not_run: tuple[str, ...]) -> None:
    """The run failed (exit 1), ``failed_task`` failed once, everything after it did not run."""
    assert run.returncode == 1, run.stderr[-3000:]
    assert "pipeline failed" in run.stderr
    assert run.tasks[failed_task] == "failed", run.tasks
    for task in not_run:
        assert run.tasks[task] == "upstream_failed", run.tasks
    for gate in GATES:  # a failed gate is final: no retry (it would wait, re-check, re-alert)
        if run.tasks.get(gate) == "failed":
            assert run.tries[gate] == 1, run.tries


def faulty_rows(run: Run, position: int) -> int:
    """Rows ``row_faults`` changed at ``position`` (row number modulo 10)."""
    return sum(1 for p in range(run.rows) if p % 10 == position)


def failures_of(alert: dict) -> dict[tuple[str, str | None, str], dict]:
    return {(f["expectation"], f["column"], f["severity"]): f for f in alert["failures"]}


def assert_delivered(run: Run, alert: dict, envelopes: list[tuple[str, list[str]]]) -> None:
    """The JSON-lines alert reached the webhook receiver and the mailbox, with its content."""
    bodies = [b for b in run.webhooks if b["recops_alert"]["alert_id"] == alert["alert_id"]]
    assert len(bodies) == 1, [b["text"][:200] for b in run.webhooks]
    body = bodies[0]
    severity = alert["severity"]
    assert body["text"].startswith(f"[RecOps {severity.upper()}]")
    assert alert["run_id"] in body["text"]
    assert body["recops_alert"] == {**alert, "created_at": body["recops_alert"]["created_at"]}
    fields = {f["title"]: f["value"] for f in body["attachments"][0]["fields"]}
    assert fields["Run"] == alert["run_id"] and fields["Stage"] == alert["stage"]
    assert fields["Severity"] == severity
    for failure in alert["failures"]:
        assert failure["expectation"] in body["text"]
        assert any(failure["expectation"] in title for title in fields)

    mails = [m for m in run.mails if m["X-RecOps-Alert-Id"] == alert["alert_id"]]
    assert len(mails) == 1, [m["Subject"] for m in run.mails]
    mail = mails[0]
    assert mail["Subject"].startswith(f"[RecOps {severity.upper()}]")
    assert alert["run_id"] in mail["Subject"]
    assert mail["To"] == MAIL_TO and mail["From"] == MAIL_FROM
    assert (MAIL_FROM, [MAIL_TO]) in envelopes
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert text.replace("\r\n", "\n").rstrip("\n") == body["text"]
    attached = json.loads(next(mail.iter_attachments()).get_content())
    assert attached["alert_id"] == alert["alert_id"]
    assert attached["failures"] == alert["failures"]


def raw_gate_alert(scenario: Scenario, run: Run, severity: str = "error") -> dict:
    """The run's only alert: the raw gate's, quarantining (on error) exactly the run's batch."""
    assert len(run.alerts) == 1, [a["title"] for a in run.alerts]
    alert = run.alerts[0]
    assert alert["kind"] == "quality_gate"
    assert alert["run_id"] == run.run_id
    assert alert["stage"] == "raw" and alert["suite"] == "raw_batch"
    assert alert["severity"] == severity
    assert alert["batch_ids"] == [run.batch_id]
    assert alert["quarantined_batch_ids"] == ([run.batch_id] if severity == "error" else [])
    assert alert["data_docs"] and Path(alert["data_docs"]).is_file()
    assert all(f["batch_id"] == run.batch_id for f in alert["failures"])
    assert len(run.webhooks) == 1 and len(run.mails) == 1
    assert_delivered(run, alert, scenario.smtp_envelopes)
    return alert


def assert_quarantined_and_kept(
    scenario: Scenario, run: Run, *, loaded: int, rejected: int, expectation: str
) -> None:
    """The batch is quarantined with the failed expectation as reason, and no raw row is lost:
    every input row is in raw.events or raw.quarantine."""
    batch = batch_row(scenario, run.batch_id)
    assert batch["status"] == "quarantined"
    assert run.run_id in batch["status_reason"] and expectation in batch["status_reason"]
    events, quarantine = raw_counts(scenario, run.batch_id, run.data)
    assert (events, quarantine) == (loaded, rejected)
    assert events + quarantine == run.rows
    items = query(
        scenario, "select count(*) as n from raw.items where batch_id = ?", [run.batch_id]
    )
    assert int(items["n"].iloc[0]) == pd.read_parquet(scenario.catalog).shape[0]


# --- the clean baseline ---------------------------------------------------------------------------
def test_clean_batch_runs_the_whole_dag_without_alert(scenario: Scenario) -> None:
    run = scenario.runs["clean"]
    assert run.returncode == 0, run.stderr[-3000:]
    assert {run.tasks[t] for t in (*GATES, *AFTER_RAW, *AFTER_TRAINING_SET)} == {"success"}
    assert run.alerts == [] and run.webhooks == [] and run.mails == []
    assert batch_row(scenario, run.batch_id)["status"] == "loaded"


# --- one test per kind of bad batch ---------------------------------------------------------------
def test_nulls_in_keys(scenario: Scenario) -> None:
    """Rows without item id are rejected by the loader (kept in raw.quarantine, reason
    missing_item_id) and their share stops the run; events without user id load (guest events)
    but their jump is a warning in the same alert."""
    run = scenario.runs["row_faults"]
    assert_stopped_at(run, "validate_raw", AFTER_RAW)
    alert = raw_gate_alert(scenario, run)
    failed = failures_of(alert)
    share = failed[(SAME_COLUMN, "share", "error")]
    assert share["suite"] == "raw.quarantine"
    over = {r["reason"]: r["share"] for r in share["observed"]["unexpected_rows"]}
    no_item = faulty_rows(run, 0)
    inputs = run.rows + pd.read_parquet(scenario.catalog).shape[0]  # the catalogue counts too
    assert over["missing_item_id"] == pytest.approx(no_item / inputs)
    assert share["threshold"]["max_value"] == 0.05
    user = failed[(FILLED, "user_id", "warning")]
    assert user["suite"] == "raw.events" and user["observed"] < 0.95
    assert user["threshold"] == {"min_value": pytest.approx(0.95)}
    missing = query(
        scenario,
        "select field, count(*) as n from raw.quarantine where batch_id = ? "
        "and reason = 'missing_item_id' group by field",
        [run.batch_id],
    )
    assert missing.to_dict("records") == [{"field": "item_id", "n": no_item}]
    users = query(
        scenario,
        "select count(*) as n from raw.events where batch_id = ? and user_id is null",
        [run.batch_id],
    )
    assert int(users["n"].iloc[0]) == faulty_rows(run, 1)


def test_negative_prices(scenario: Scenario) -> None:
    run = scenario.runs["row_faults"]
    assert_stopped_at(run, "validate_raw", AFTER_RAW)
    share = failures_of(raw_gate_alert(scenario, run))[(SAME_COLUMN, "share", "error")]
    assert "negative_price" in {r["reason"] for r in share["observed"]["unexpected_rows"]}
    rejected = query(
        scenario,
        "select raw_record from raw.quarantine where batch_id = ? and reason = 'negative_price'",
        [run.batch_id],
    )
    assert len(rejected) == faulty_rows(run, 2)
    assert all(json.loads(r)["price"] < 0 for r in rejected["raw_record"])


def test_unknown_event_type(scenario: Scenario) -> None:
    run = scenario.runs["row_faults"]
    assert_stopped_at(run, "validate_raw", AFTER_RAW)
    share = failures_of(raw_gate_alert(scenario, run))[(SAME_COLUMN, "share", "error")]
    assert "unknown_event_type" in {r["reason"] for r in share["observed"]["unexpected_rows"]}
    rejected = query(
        scenario,
        "select field, raw_record from raw.quarantine where batch_id = ? "
        "and reason = 'unknown_event_type'",
        [run.batch_id],
    )
    assert set(rejected["field"]) == {"event_type"}
    assert {json.loads(r)["event_type"] for r in rejected["raw_record"]} == {"teleport"}
    # nothing of it reached raw.events: the raw table keeps only the accepted types
    types = query(
        scenario, "select distinct event_type from raw.events where batch_id = ?", [run.batch_id]
    )
    assert "teleport" not in set(types["event_type"])


def test_future_timestamps(scenario: Scenario) -> None:
    """``recops run`` dates the run by the file's newest event, so five events in 2099 move the
    run's own interval to 2099; the gate still sees events after the batch was ingested."""
    run = scenario.runs["row_faults"]
    assert_stopped_at(run, "validate_raw", AFTER_RAW)
    future = failures_of(raw_gate_alert(scenario, run))[
        ("expect_column_pair_values_a_to_be_greater_than_b", "ingested_at > event_at", "error")
    ]
    assert future["observed"]["unexpected_count"] == 5
    assert all(pair[1].startswith("2099-01-01T12:00") for pair in future["observed"]["examples"])
    # the five events stay in raw (quarantined with their batch), with their timestamps
    rows = query(
        scenario,
        "select count(*) as n from raw.events where batch_id = ? and event_at > ingested_at",
        [run.batch_id],
    )
    assert int(rows["n"].iloc[0]) == 5


def test_row_faults_batch_is_quarantined_without_losing_a_row(scenario: Scenario) -> None:
    run = scenario.runs["row_faults"]
    rejected = sum(faulty_rows(run, position) for position in (0, 2, 3))  # see row_faults()
    assert_quarantined_and_kept(
        scenario,
        run,
        loaded=run.rows - rejected,
        rejected=rejected,
        expectation="expect_column_values_to_be_between(share)",
    )
    reasons = json.loads(batch_row(scenario, run.batch_id)["quarantine_reasons"])
    assert set(reasons) == {"missing_item_id", "negative_price", "unknown_event_type"}


def test_schema_change_missing_and_renamed_column(scenario: Scenario) -> None:
    """An optional column the file lost (session_id) or renamed (price -> cost) loads as NULL
    (the loader ignores unknown columns): the gate sees the column emptied."""
    run = scenario.runs["schema"]
    assert_stopped_at(run, "validate_raw", AFTER_RAW)
    alert = raw_gate_alert(scenario, run)
    failed = failures_of(alert)
    for column in ("session_id", "price_amount"):
        emptied = failed[(FILLED, column, "error")]
        assert emptied["observed"] == 0.0
        assert emptied["threshold"] == {"min_value": 0.5}  # half of its recent share (1.0)
        assert "missing or renamed column" in emptied["description"]
        assert (FILLED, column, "warning") not in failed  # one check, reported once
    assert {(e, c) for e, c, s in failed if s == "error"} == {
        (FILLED, "session_id"),
        (FILLED, "price_amount"),
    }
    assert_quarantined_and_kept(
        scenario, run, loaded=run.rows, rejected=0, expectation=f"{FILLED}(session_id)"
    )


def test_unreadable_file_fails_ingest_and_alerts_the_task_failure(scenario: Scenario) -> None:
    """A missing required column: IngestError, nothing loaded, the on_failure_callback alerts."""
    run = scenario.runs["unreadable"]
    assert_stopped_at(run, "ingest", ("validate_raw", *AFTER_RAW))
    assert len(run.alerts) == 1, [a["title"] for a in run.alerts]  # once, after the last try
    alert = run.alerts[0]
    assert alert["kind"] == "task_failure" and alert["severity"] == "error"
    assert alert["run_id"] == run.run_id
    assert (alert["dag_id"], alert["task_id"], alert["stage"]) == (DAG_ID, "ingest", "ingest")
    assert "missing required column" in alert["exception"]
    assert "'event_type'" in alert["exception"] and str(run.data) in alert["exception"]
    assert alert["failures"] == []
    assert_delivered(run, alert, scenario.smtp_envelopes)
    # nothing was written: no batch, no raw row; the file is still there to be fixed and re-sent
    assert query(scenario, "select * from raw.batches where batch_id = ?", [run.batch_id]).empty
    assert raw_counts(scenario, run.batch_id, run.data) == (0, 0)
    assert run.data.is_file()


def test_row_count_drop_of_90_percent(scenario: Scenario) -> None:
    run = scenario.runs["row_drop"]
    assert_stopped_at(run, "validate_raw", AFTER_RAW)
    failed = failures_of(raw_gate_alert(scenario, run))
    assert set(failed) == {("expect_table_row_count_to_be_between", None, "error")}
    count = failed[("expect_table_row_count_to_be_between", None, "error")]
    assert count["observed"] == run.rows
    # the band: the median of the loaded batches' events (b3, b2, b1, history) +/- 50%
    median = statistics.median(
        len(pd.read_parquet(scenario.batches[b])) for b in ("history", "b1", "b2", "b3")
    )
    assert count["threshold"] == {
        "min_value": math.ceil(0.5 * median),
        "max_value": math.floor(1.5 * median),
    }
    assert_quarantined_and_kept(
        scenario,
        run,
        loaded=run.rows,
        rejected=0,
        expectation="expect_table_row_count_to_be_between",
    )


def test_duplicated_batch(scenario: Scenario) -> None:
    run = scenario.runs["duplicate"]
    assert_stopped_at(run, "validate_raw", AFTER_RAW)
    failed = failures_of(raw_gate_alert(scenario, run))
    assert set(failed) == {(NOT_DUPLICATE, "duplicate_of_batch_id", "error")}
    dup = failed[(NOT_DUPLICATE, "duplicate_of_batch_id", "error")]
    assert dup["observed"]["unexpected_count"] == run.rows  # every event was loaded before
    assert dup["observed"]["examples"] == [scenario.runs["clean"].batch_id]
    assert_quarantined_and_kept(
        scenario, run, loaded=run.rows, rejected=0, expectation="duplicate_of_batch_id"
    )


def test_drifted_feature_distribution(scenario: Scenario) -> None:
    """Raw and marts gates pass; the training set's features drift from the last accepted one:
    the run stops before training, and the batch behind it is quarantined."""
    run = scenario.runs["drift"]
    assert_stopped_at(run, "validate_training_set", AFTER_TRAINING_SET)
    assert {run.tasks[t] for t in ("validate_raw", *AFTER_RAW)} == {"success"}
    assert len(run.alerts) == 1, [a["title"] for a in run.alerts]
    alert = run.alerts[0]
    assert (alert["kind"], alert["stage"], alert["suite"]) == (
        "quality_gate",
        "training_set",
        "training_set",
    )
    assert alert["severity"] == "error" and alert["run_id"] == run.run_id
    assert alert["quarantined_batch_ids"] == [run.batch_id]
    errors = {f["column"]: f for f in alert["failures"] if f["severity"] == "error"}
    assert errors and {f["suite"] for f in errors.values()} == {"training_set.drift"}
    assert {f["expectation"] for f in errors.values()} == {"expect_column_max_to_be_between"}
    # above the configured 0.25 and above what sampling noise reaches on this many query groups
    assert all(f["observed"] > f["threshold"]["max_value"] >= 0.25 for f in errors.values())
    assert any("spend_amount" in column for column in errors), sorted(errors)
    assert_delivered(run, alert, scenario.smtp_envelopes)
    assert_quarantined_and_kept(
        scenario, run, loaded=run.rows, rejected=0, expectation="expect_column_max_to_be_between"
    )


# --- the warning case and the next run -------------------------------------------------------------
def test_warning_lets_the_run_go_on(scenario: Scenario) -> None:
    """15% of the batch was loaded before: a warning (staging deduplicates), the run goes on."""
    run = scenario.runs["recovery"]
    assert run.returncode == 0, run.stderr[-3000:]
    assert {run.tasks[t] for t in (*GATES, *AFTER_RAW, *AFTER_TRAINING_SET)} == {"success"}
    raw = [a for a in run.alerts if a["stage"] == "raw"]
    assert len(raw) == 1
    alert = raw[0]
    assert alert["severity"] == "warning" and alert["quarantined_batch_ids"] == []
    assert alert["title"].startswith("Quality gate raw passed with warnings")
    failed = failures_of(alert)
    assert set(failed) == {(NOT_DUPLICATE, "duplicate_of_batch_id", "warning")}
    overlap = failed[(NOT_DUPLICATE, "duplicate_of_batch_id", "warning")]["observed"]
    assert overlap["unexpected_count"] == OVERLAP_ROWS
    assert overlap["examples"] == [scenario.runs["clean"].batch_id]
    assert_delivered(run, alert, scenario.smtp_envelopes)
    # no other data-quality alert stops anything (a promotion-gate verdict may follow)
    assert not [a for a in run.alerts if a["severity"] == "error" and a["stage"] in
                ("raw", "marts", "training_set")]  # fmt: skip
    assert batch_row(scenario, run.batch_id)["status"] == "loaded"


def test_next_run_starts_from_the_last_good_state(scenario: Scenario) -> None:
    """Every failed batch stays quarantined with its raw rows; the marts hold exactly the loaded
    batches' events (history, b1, b2, b3, recovery), deduplicated."""
    failed = [
        r for r in scenario.runs.values() if r.name not in ("clean", "recovery", "unreadable")
    ]
    statuses = query(scenario, "select batch_id, status from raw.batches")
    status = dict(zip(statuses["batch_id"], statuses["status"], strict=True))
    for run in failed:
        assert status[run.batch_id] == "quarantined", run.name
    loaded = [*scenario.history_batch_ids, scenario.runs["clean"].batch_id,
              scenario.runs["recovery"].batch_id]  # fmt: skip
    assert sorted(b for b, s in status.items() if s == "loaded") == sorted(loaded)

    good = pd.concat(
        pd.read_parquet(scenario.batches[n]) for n in ("history", "b1", "b2", "b3", "recovery")
    )
    keys = ["user_id", "item_id", "event_type", "event_at", "quantity", "price"]
    expected = good.drop_duplicates(keys)
    fct = query(
        scenario,
        "select count(*) as n, max(price_amount) as top_price, max(event_at) as newest "
        "from main.fct_interactions",
    ).iloc[0]
    assert int(fct["n"]) == len(expected)
    assert float(fct["top_price"]) == pytest.approx(good["price"].max())  # no drifted price
    assert pd.Timestamp(fct["newest"]) == good["event_at"].max().tz_localize(None)  # no 2099


def test_a_failed_gate_keeps_the_last_accepted_drift_baseline(scenario: Scenario) -> None:
    from recops.quality.references import accepted_runs

    accepted = accepted_runs(scenario.settings)
    assert scenario.runs["drift"].run_id not in accepted
    assert accepted[0] == scenario.runs["clean"].run_id
    assert accepted[-1] == scenario.runs["recovery"].run_id
