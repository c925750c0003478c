"""Raw-batch gate on a real DuckDB warehouse with real GX, a real webhook and a real SMTP server."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recops.core.settings import Settings
from recops.core.warehouse import Warehouse
from recops.quality.checkpoints import enforce, validate_raw_batches
from recops.quality.paths import data_docs_index
from recops.quality.results import QualityGateError, QualityResult

RUN = "scheduled__2010-12-31T00:00:00+00:00"


def failed(result: QualityResult) -> set[tuple[str | None, str, str | None, str]]:
    return {(f.suite, f.expectation, f.column, f.severity) for f in result.failures}


def assert_alerted(
    settings: Settings,
    webhook,
    smtp,
    quality_data,
    *,
    severity: str,
    expectation: str,
    column: str | None,
    batch_id: str,
    quarantined: bool,
) -> dict:
    """The same alert reached the JSON-lines file, the webhook and the mailbox."""
    alerts = quality_data.read_alerts(settings)
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["kind"] == "quality_gate"
    assert alert["run_id"] == RUN
    assert alert["stage"] == "raw"
    assert alert["suite"] == "raw_batch"
    assert alert["severity"] == severity
    assert batch_id in alert["batch_ids"]
    assert alert["quarantined_batch_ids"] == ([batch_id] if quarantined else [])
    hit = [
        f for f in alert["failures"] if f["expectation"] == expectation and f["column"] == column
    ]
    assert hit, alert["failures"]
    assert hit[0]["batch_id"] == batch_id
    assert hit[0]["severity"] == severity
    assert hit[0]["observed"] is not None
    assert hit[0]["threshold"]
    assert alert["data_docs"] and Path(alert["data_docs"]).is_file()

    assert len(webhook.bodies) == 1
    body = webhook.bodies[0]
    assert body["text"].startswith(f"[RecOps {severity.upper()}]")
    assert RUN in body["text"] and expectation in body["text"] and batch_id in body["text"]
    fields = {f["title"]: f["value"] for f in body["attachments"][0]["fields"]}
    assert fields["Run"] == RUN
    assert fields["Stage"] == "raw"
    assert fields["Severity"] == severity
    assert fields["Data Docs"] == alert["data_docs"]
    assert any(expectation in title and "observed:" in value for title, value in fields.items())
    assert body["recops_alert"]["alert_id"] == alert["alert_id"]

    assert len(smtp.messages) == 1
    mail = smtp.messages[0]
    assert mail["Subject"].startswith(f"[RecOps {severity.upper()}]")
    assert RUN in mail["Subject"]
    assert smtp.envelopes[0] == (
        "recops@example.test",
        ["oncall@example.test", "data@example.test"],
    )
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert expectation in text and batch_id in text and alert["data_docs"] in text
    attached = next(mail.iter_attachments())
    assert attached.get_filename() == "alert.json"
    assert json.loads(attached.get_content())["alert_id"] == alert["alert_id"]
    return alert


def _negative_prices(df: pd.DataFrame) -> None:
    df.loc[:9, "price_amount"] = -3.5


def _unknown_event_type(df: pd.DataFrame) -> None:
    df.loc[:4, "event_type"] = "wishlist"


def _future_timestamps(df: pd.DataFrame) -> None:
    df.loc[:2, "event_at"] = datetime(2011, 1, 3)  # three days after the batches' AS_OF


def _before_shop_start(df: pd.DataFrame) -> None:
    df.loc[0, "event_at"] = datetime(2008, 5, 1)


def _duplicated_rows(df: pd.DataFrame) -> None:
    df.loc[:19, "source_row"] = 7


def _huge_quantity(df: pd.DataFrame) -> None:
    df.loc[3, "quantity"] = 5e6


BAD_BATCHES: dict[str, tuple[Callable[[pd.DataFrame], None], str, str | None]] = {
    "negative prices": (_negative_prices, "expect_column_values_to_be_between", "price_amount"),
    "unknown event type": (_unknown_event_type, "expect_column_values_to_be_in_set", "event_type"),
    "future timestamps": (_future_timestamps, "expect_column_max_to_be_between", "event_at"),
    "before shop start": (_before_shop_start, "expect_column_min_to_be_between", "event_at"),
    "duplicated rows": (
        _duplicated_rows,
        "expect_compound_columns_to_be_unique",
        "source_file, source_row",
    ),
    "implausible quantity": (_huge_quantity, "expect_column_values_to_be_between", "quantity"),
}


def test_clean_batch_passes_without_alert(alerting_settings: Settings, webhook, smtp, quality_data) -> None:
    quality_data.load_batch(alerting_settings, "b-clean", quality_data.raw_events("b-clean", 500), quality_data.raw_items("b-clean"))

    result = validate_raw_batches(alerting_settings, ["b-clean"], run_id=RUN, as_of=quality_data.AS_OF)
    enforced = enforce(result, alerting_settings, stage="raw")

    assert result.success and enforced.failures == []
    assert result.statistics["evaluated_expectations"] > 40
    assert {v["suite"] for v in result.statistics["validations"]} == {
        "raw.events",
        "raw.items",
        "raw.quarantine",
    }
    assert enforced.alert_channels == [] and enforced.quarantined_batch_ids == []
    assert quality_data.read_alerts(alerting_settings) == []
    assert webhook.bodies == [] and smtp.messages == []
    assert quality_data.batch_status(alerting_settings, "b-clean") == ("loaded", None)
    assert data_docs_index(alerting_settings).is_file()
    assert Path(result.data_docs_path).is_file()
    assert "b-clean" in result.data_docs_path


@pytest.mark.parametrize("case", list(BAD_BATCHES))
def test_bad_batch_is_quarantined_and_alerted(
    case: str, alerting_settings: Settings, webhook, smtp, quality_data
) -> None:
    mutate, expectation, column = BAD_BATCHES[case]
    events = quality_data.raw_events("b-bad", 300)
    mutate(events)
    quality_data.load_batch(alerting_settings, "b-bad", events)

    result = validate_raw_batches(alerting_settings, ["b-bad"], run_id=RUN, as_of=quality_data.AS_OF)
    assert ("raw.events", expectation, column, "error") in failed(result)
    assert not result.success and not result.passed_gate

    with pytest.raises(QualityGateError) as raised:
        enforce(result, alerting_settings, stage="raw")
    message = str(raised.value)
    assert expectation in message and "observed=" in message and "threshold=" in message
    assert raised.value.result.quarantined_batch_ids == ["b-bad"]

    status, reason = quality_data.batch_status(alerting_settings, "b-bad")
    assert status == "quarantined"
    assert expectation in reason and RUN in reason
    assert quality_data.raw_rows(alerting_settings, "b-bad") == 300  # raw rows are kept
    assert_alerted(
        alerting_settings,
        webhook,
        smtp,
        quality_data,
        severity="error",
        expectation=expectation,
        column=column,
        batch_id="b-bad",
        quarantined=True,
    )
    assert data_docs_index(alerting_settings).is_file()


def test_future_timestamp_is_relative_to_the_data_interval_end(settings: Settings, quality_data) -> None:
    events = quality_data.raw_events("b-1", 100)
    quality_data.load_batch(settings, "b-1", events)
    newest = events["event_at"].max()

    early = validate_raw_batches(
        settings, ["b-1"], run_id="r-early", as_of=newest - timedelta(hours=1)
    )
    late = validate_raw_batches(settings, ["b-1"], run_id="r-late", as_of=newest)

    future = [f for f in early.failures if f.expectation == "expect_column_max_to_be_between"]
    assert len(future) == 1
    assert future[0].observed == newest.isoformat()
    assert future[0].threshold["max_value"] == (newest - timedelta(hours=1)).isoformat()
    assert late.success


def test_nulls_in_keys(alerting_settings: Settings, webhook, smtp, quality_data) -> None:
    # The raw DDL forbids these nulls; a warehouse whose constraint was dropped (a migration
    # drift, a hand-made PostgreSQL table) would let them through, and the gate must not.
    with Warehouse(alerting_settings) as wh:
        wh.ensure_raw_schema()
        wh.execute("alter table raw.events alter column item_id drop not null")
        wh.execute("alter table raw.events alter column event_at drop not null")
    events = quality_data.raw_events("b-nulls", 200)
    events["item_id"] = events["item_id"].astype(object)
    events.loc[:4, "item_id"] = None
    events.loc[10:11, "event_at"] = pd.NaT
    quality_data.load_batch(alerting_settings, "b-nulls", events)

    result = validate_raw_batches(alerting_settings, ["b-nulls"], run_id=RUN, as_of=quality_data.AS_OF)

    nulls = {
        f.column: f
        for f in result.failures
        if f.expectation == "expect_column_values_to_not_be_null"
    }
    assert set(nulls) == {"item_id", "event_at"}
    assert nulls["item_id"].observed["unexpected_count"] == 5
    assert nulls["event_at"].observed["unexpected_count"] == 2
    assert all(f.severity == "error" and f.batch_id == "b-nulls" for f in nulls.values())
    with pytest.raises(QualityGateError):
        enforce(result, alerting_settings, stage="raw")
    assert quality_data.batch_status(alerting_settings, "b-nulls")[0] == "quarantined"
    assert quality_data.raw_rows(alerting_settings, "b-nulls") == 200
    assert_alerted(
        alerting_settings,
        webhook,
        smtp,
        quality_data,
        severity="error",
        expectation="expect_column_values_to_not_be_null",
        column="item_id",
        batch_id="b-nulls",
        quarantined=True,
    )


def test_schema_change_missing_and_renamed_column(
    alerting_settings: Settings, webhook, smtp, quality_data
) -> None:
    quality_data.load_batch(alerting_settings, "b-old", quality_data.raw_events("b-old", 200))
    with Warehouse(alerting_settings) as wh:
        wh.execute("alter table raw.events drop column country")
        wh.execute("alter table raw.events rename column price_amount to price")
    events = (
        quality_data.raw_events("b-new", 200).drop(columns=["country"]).rename(columns={"price_amount": "price"})
    )
    with Warehouse(alerting_settings) as wh:
        wh.append_df("raw.events", events)
        wh.append_df(
            "raw.batches",
            pd.DataFrame(
                {
                    "batch_id": ["b-new"],
                    "source": ["events"],
                    "files": ["[]"],
                    "rows_in": [200],
                    "rows_loaded": [200],
                    "rows_quarantined": [0],
                    "quarantine_reasons": ["{}"],
                    "status": ["loaded"],
                    "status_reason": [None],
                    "ingested_at": [quality_data.AS_OF + timedelta(hours=1)],
                }
            ),
        )

    result = validate_raw_batches(alerting_settings, ["b-new"], run_id=RUN, as_of=quality_data.AS_OF)

    schema = [f for f in result.failures if f.expectation == "expect_table_columns_to_match_set"]
    assert len(schema) == 1 and schema[0].severity == "error"
    mismatch = schema[0].details["mismatched"]
    assert set(mismatch["missing"]) == {"country", "price_amount"}
    assert mismatch["unexpected"] == ["price"]
    # the expectations on the vanished columns fail too (with GX's exception as observed value)
    lost = {
        f.column
        for f in result.failures
        if isinstance(f.observed, dict) and "exception" in f.observed
    }
    assert {"country", "price_amount"} <= lost
    with pytest.raises(QualityGateError, match="expect_table_columns_to_match_set"):
        enforce(result, alerting_settings, stage="raw")
    assert quality_data.batch_status(alerting_settings, "b-new")[0] == "quarantined"
    assert quality_data.batch_status(alerting_settings, "b-old")[0] == "loaded"
    assert quality_data.raw_rows(alerting_settings, "b-new") == 200
    assert_alerted(
        alerting_settings,
        webhook,
        smtp,
        quality_data,
        severity="error",
        expectation="expect_table_columns_to_match_set",
        column=None,
        batch_id="b-new",
        quarantined=True,
    )


def test_changed_column_type_fails_schema(settings: Settings, quality_data) -> None:
    with Warehouse(settings) as wh:
        wh.ensure_raw_schema()
        wh.execute("alter table raw.events alter column quantity type varchar")
    quality_data.load_batch(settings, "b-typed", quality_data.raw_events("b-typed", 50).assign(quantity="3"))

    result = validate_raw_batches(settings, ["b-typed"], run_id=RUN, as_of=quality_data.AS_OF)

    typed = [f for f in result.failures if f.expectation == "expect_column_type_to_be"]
    assert [(f.column, f.observed, f.threshold["type_"]) for f in typed] == [
        ("quantity", "object", "float64")
    ]


def _history(settings: Settings, rows: list[int], quality_data) -> None:
    for k, n in enumerate(rows):
        bid = f"h-{k}"
        quality_data.load_batch(
            settings, bid, quality_data.raw_events(bid, n, seed=k), ingested_at=quality_data.AS_OF - timedelta(days=10 - k)
        )


def test_row_count_drop_of_90_percent(alerting_settings: Settings, webhook, smtp, quality_data) -> None:
    _history(alerting_settings, [1000, 1100, 900, 1000, 1050, 980], quality_data)
    quality_data.load_batch(alerting_settings, "b-small", quality_data.raw_events("b-small", 100, seed=99))

    result = validate_raw_batches(alerting_settings, ["b-small"], run_id=RUN, as_of=quality_data.AS_OF)

    rc = [f for f in result.failures if f.expectation == "expect_table_row_count_to_be_between"]
    assert len(rc) == 1 and rc[0].severity == "error"
    assert rc[0].observed == 100
    # median of the last 5 loaded batches (1100, 900, 1000, 1050, 980) = 1000, tolerance 50%
    assert rc[0].threshold == {"min_value": 500.0, "max_value": 1500.0}
    assert result.statistics["batches"]["b-small"]["history"] == [980, 1050, 1000, 900, 1100]
    with pytest.raises(QualityGateError, match="expect_table_row_count_to_be_between"):
        enforce(result, alerting_settings, stage="raw")
    assert quality_data.batch_status(alerting_settings, "b-small")[0] == "quarantined"
    assert quality_data.raw_rows(alerting_settings, "b-small") == 100
    assert_alerted(
        alerting_settings,
        webhook,
        smtp,
        quality_data,
        severity="error",
        expectation="expect_table_row_count_to_be_between",
        column=None,
        batch_id="b-small",
        quarantined=True,
    )


def test_row_count_within_tolerance_and_quarantined_history_ignored(settings: Settings, quality_data) -> None:
    _history(settings, [1000, 1000, 1000], quality_data)
    quality_data.load_batch(
        settings,
        "h-bad",
        quality_data.raw_events("h-bad", 10),
        ingested_at=quality_data.AS_OF - timedelta(days=1),
        status="quarantined",
    )
    quality_data.load_batch(settings, "b-ok", quality_data.raw_events("b-ok", 700, seed=5))

    result = validate_raw_batches(settings, ["b-ok"], run_id=RUN, as_of=quality_data.AS_OF)

    assert result.success, [f.line() for f in result.failures]
    assert result.statistics["batches"]["b-ok"]["history"] == [1000, 1000, 1000]


def test_redelivered_batch_is_quarantined(alerting_settings: Settings, webhook, smtp, quality_data) -> None:
    first = quality_data.raw_events("b-1", 300)
    quality_data.load_batch(alerting_settings, "b-1", first, ingested_at=quality_data.AS_OF - timedelta(days=1))
    # the same file delivered again under a new name: same events, new batch
    again = first.assign(batch_id="b-2", source_file="/data/copy-of-b-1.csv")
    quality_data.load_batch(alerting_settings, "b-2", again)

    result = validate_raw_batches(alerting_settings, ["b-2"], run_id=RUN, as_of=quality_data.AS_OF)

    dup = [f for f in result.failures if f.column == "duplicate_of_batch_id"]
    assert [(f.expectation, f.severity) for f in dup] == [
        ("expect_column_values_to_be_null", "error")
    ]
    assert dup[0].observed["unexpected_count"] == 300
    assert dup[0].observed["examples"][0] == "b-1"
    with pytest.raises(QualityGateError):
        enforce(result, alerting_settings, stage="raw")
    assert quality_data.batch_status(alerting_settings, "b-2")[0] == "quarantined"
    assert quality_data.batch_status(alerting_settings, "b-1")[0] == "loaded"
    assert quality_data.raw_rows(alerting_settings, "b-2") == 300
    assert_alerted(
        alerting_settings,
        webhook,
        smtp,
        quality_data,
        severity="error",
        expectation="expect_column_values_to_be_null",
        column="duplicate_of_batch_id",
        batch_id="b-2",
        quarantined=True,
    )


def test_partial_overlap_only_warns(alerting_settings: Settings, webhook, smtp, quality_data) -> None:
    first = quality_data.raw_events("b-1", 300)
    quality_data.load_batch(alerting_settings, "b-1", first, ingested_at=quality_data.AS_OF - timedelta(days=1))
    fresh = quality_data.raw_events("b-2", 270, seed=11)
    overlap = first.iloc[:30].assign(batch_id="b-2", source_row=range(270, 300))
    quality_data.load_batch(alerting_settings, "b-2", pd.concat([fresh, overlap], ignore_index=True))

    result = validate_raw_batches(alerting_settings, ["b-2"], run_id=RUN, as_of=quality_data.AS_OF)
    enforced = enforce(result, alerting_settings, stage="raw")  # no raise: warnings only

    assert failed(result) == {
        ("raw.events", "expect_column_values_to_be_null", "duplicate_of_batch_id", "warning")
    }
    assert result.failures[0].observed["unexpected_count"] == 30
    assert result.passed_gate and not result.success
    assert enforced.alert_channels == ["jsonl", "webhook", "email"]
    assert quality_data.batch_status(alerting_settings, "b-2")[0] == "loaded"
    assert_alerted(
        alerting_settings,
        webhook,
        smtp,
        quality_data,
        severity="warning",
        expectation="expect_column_values_to_be_null",
        column="duplicate_of_batch_id",
        batch_id="b-2",
        quarantined=False,
    )


def test_only_the_bad_batch_of_several_is_quarantined(settings: Settings, quality_data) -> None:
    quality_data.load_batch(
        settings, "b-good", quality_data.raw_events("b-good", 200), ingested_at=quality_data.AS_OF - timedelta(hours=2)
    )
    bad = quality_data.raw_events("b-bad", 200, seed=3)
    _negative_prices(bad)
    quality_data.load_batch(settings, "b-bad", bad)

    result = validate_raw_batches(settings, ["b-good", "b-bad"], run_id=RUN, as_of=quality_data.AS_OF)

    assert {f.batch_id for f in result.failures} == {"b-bad"}
    with pytest.raises(QualityGateError):
        enforce(result, settings, stage="raw")
    assert quality_data.batch_status(settings, "b-bad")[0] == "quarantined"
    assert quality_data.batch_status(settings, "b-good")[0] == "loaded"
    alert = quality_data.read_alerts(settings)[0]
    assert alert["batch_ids"] == ["b-good", "b-bad"] and alert["quarantined_batch_ids"] == ["b-bad"]


def test_rows_the_loader_quarantined_count_against_the_batch(
    alerting_settings: Settings, webhook, smtp, quality_data
) -> None:
    # 300 records loaded, 40 rejected by the loader: 30 without item id, 10 with a negative price
    events = quality_data.raw_events("b-rej", 300)
    quality_data.load_batch(
        alerting_settings,
        "b-rej",
        events,
        quarantined={"missing_item_id": 30, "negative_price": 10},
    )

    result = validate_raw_batches(alerting_settings, ["b-rej"], run_id=RUN, as_of=quality_data.AS_OF)

    share = [f for f in result.failures if f.suite == "raw.quarantine"]
    assert [(f.expectation, f.column, f.severity) for f in share] == [
        ("expect_column_values_to_be_between", "share", "error")
    ]  # the warning tier of the same check is not reported twice
    rows = {r["reason"]: r["share"] for r in share[0].observed["unexpected_rows"]}
    # 30/340 and 40/340 exceed 5%; 10/340 (2.9%) does not, so it is not listed
    assert rows == {"missing_item_id": pytest.approx(30 / 340), "all_reasons": 40 / 340}
    assert share[0].threshold == {"min_value": 0, "max_value": 0.05}
    assert result.statistics["batches"]["b-rej"]["quarantined"] == {
        "missing_item_id": 30,
        "negative_price": 10,
        "all_reasons": 40,
    }
    with pytest.raises(QualityGateError, match="missing_item_id"):
        enforce(result, alerting_settings, stage="raw")
    assert quality_data.batch_status(alerting_settings, "b-rej")[0] == "quarantined"
    assert quality_data.raw_rows(alerting_settings, "b-rej") == 300
    assert_alerted(
        alerting_settings,
        webhook,
        smtp,
        quality_data,
        severity="error",
        expectation="expect_column_values_to_be_between",
        column="share",
        batch_id="b-rej",
        quarantined=True,
    )


def test_few_quarantined_rows_only_warn(settings: Settings, quality_data) -> None:
    quality_data.load_batch(settings, "b-few", quality_data.raw_events("b-few", 500), quarantined={"invalid_price": 10})

    result = validate_raw_batches(settings, ["b-few"], run_id=RUN, as_of=quality_data.AS_OF)

    assert failed(result) == {
        ("raw.quarantine", "expect_column_values_to_be_between", "share", "warning")
    }
    assert {r["reason"] for r in result.failures[0].observed["unexpected_rows"]} == {
        "invalid_price",
        "all_reasons",
    }
    assert result.passed_gate


def test_event_after_its_ingestion_is_in_the_future(settings: Settings, quality_data) -> None:
    # the run's interval may end after the bad event (a run dated by its newest event): the
    # batch's own ingestion time still shows the event cannot have happened yet
    events = quality_data.raw_events("b-1", 100)
    events.loc[:3, "event_at"] = datetime(2031, 5, 1)
    quality_data.load_batch(settings, "b-1", events, ingested_at=quality_data.AS_OF)

    result = validate_raw_batches(settings, ["b-1"], run_id=RUN, as_of=datetime(2031, 5, 2))

    assert failed(result) == {
        (
            "raw.events",
            "expect_column_pair_values_a_to_be_greater_than_b",
            "ingested_at > event_at",
            "error",
        )
    }
    assert result.failures[0].observed["unexpected_count"] == 4
    assert result.failures[0].threshold["or_equal"] is True


def test_optional_column_emptied_is_a_schema_change(settings: Settings, quality_data) -> None:
    _history(settings, [300, 300, 300], quality_data)
    events = quality_data.raw_events("b-new", 300, seed=8)
    events["price_amount"] = np.nan  # the file renamed its price column: loaded as NULL
    events["session_id"] = events["session_id"].astype(object)
    events.loc[:39, "session_id"] = None  # 13% of the events lost their session
    quality_data.load_batch(settings, "b-new", events)

    result = validate_raw_batches(settings, ["b-new"], run_id=RUN, as_of=quality_data.AS_OF)

    filled = {
        (f.column, f.severity): f
        for f in result.failures
        if f.expectation == "expect_column_proportion_of_non_null_values_to_be_between"
    }
    assert set(filled) == {("price_amount", "error"), ("session_id", "warning")}
    assert filled[("price_amount", "error")].observed == 0.0
    assert filled[("price_amount", "error")].threshold == {"min_value": 0.5}
    assert filled[("session_id", "warning")].observed == pytest.approx(260 / 300)
    assert filled[("session_id", "warning")].threshold == {"min_value": pytest.approx(0.95)}
    # quantity is set only for some event types (~50%): not a normally filled column, unchecked
    assert result.statistics["batches"]["b-new"]["filled_share_history"]["quantity"] < 0.9


def test_no_batches_validates_nothing(settings: Settings, quality_data) -> None:
    result = validate_raw_batches(settings, [], run_id=RUN, as_of=quality_data.AS_OF)
    assert result.success and result.failures == [] and result.batch_ids == []
    assert enforce(result, settings, stage="raw").alert_channels == []


def test_unknown_batch_is_a_usage_error(settings: Settings, quality_data) -> None:
    quality_data.load_batch(settings, "b-1", quality_data.raw_events("b-1", 10))
    with pytest.raises(ValueError, match="b-404"):
        validate_raw_batches(settings, ["b-404"], run_id=RUN, as_of=quality_data.AS_OF)


def _served_log(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _served_line(request: str, at: datetime, ranks: list[int]) -> dict:
    return {"request_id": request, "served_at": at.isoformat(), "user_key": "k1", "model_name": "m",
            "model_version": "1", "variant": "champion", "kind": "personal", "context_item_id": None, "k": 10,
            "items": [{"item_id": f"i{r}", "rank": r, "score": 1.0 / r, "retrievers": ["als"]} for r in ranks]}


def test_api_log_batches_are_gated_by_their_own_suite_without_a_row_count_band(
    settings: Settings, quality_data, tmp_path
) -> None:
    """Served-list batches have their own checks (ranks, times, one item per rank); feedback and
    served batches follow the traffic, so a small one after large ones is no row-count drop."""
    from recops.ingestion.events import ingest_feedback
    from recops.ingestion.served import ingest_served

    at = quality_data.AS_OF - timedelta(days=1)
    for k in range(3):  # large served batches before
        lines = [_served_line(f"{k:02d}{n:030d}", at, list(range(1, 11))) for n in range(50)]
        ingest_served(settings, _served_log(tmp_path / f"served-{k}.jsonl", lines))
    small = ingest_served(settings, _served_log(tmp_path / "served-small.jsonl", [_served_line("a" * 32, at, [1, 2])]))
    late = ingest_served(settings, _served_log(
        tmp_path / "served-late.jsonl", [_served_line("b" * 32, quality_data.AS_OF + timedelta(hours=2), [1])]))
    twice = ingest_served(settings, _served_log(
        tmp_path / "served-twice.jsonl", [_served_line("c" * 32, at, [1, 2]), _served_line("c" * 32, at, [2])]))
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text(json.dumps({"user_id": "u1", "item_id": "i1", "event_type": "click",
                                    "event_at": at.isoformat(), "request_id": "a" * 32, "rank": 1}) + "\n")
    clicked = ingest_feedback(settings, feedback)

    ids = [small.batch_id, late.batch_id, twice.batch_id, clicked.batch_id]
    result = validate_raw_batches(settings, ids, run_id=RUN, as_of=quality_data.AS_OF)

    by_batch = {b: {(f.expectation, f.column) for f in result.failures if f.batch_id == b} for b in ids}
    assert by_batch[small.batch_id] == set()  # 2 rows after 500-row batches: fine for a log
    assert by_batch[clicked.batch_id] == set()
    assert by_batch[late.batch_id] == {("expect_column_max_to_be_between", "served_at")}
    assert by_batch[twice.batch_id] == {("expect_compound_columns_to_be_unique", "request_id, served_rank")}
    assert result.statistics["batches"][small.batch_id]["served"] == 2
