"""`recops forget` on a real pipeline: after the erasure and the next `recops run`, no table, file,
feature or recommendation mentions the customer, and the audit row holds counts only."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from recops.core.privacy import pseudonymise
from recops.core.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.heavy]

SUPPRESSION = "raw.suppressed_users"  # holds the salted key by design (see recops/core/warehouse_erasure.py)


@pytest.fixture(scope="module")
def erased(tmp_path_factory: pytest.TempPathFactory, cli, parse_json, traces) -> dict:
    from recops.ingestion import write_shop

    home, shop = tmp_path_factory.mktemp("forget-home"), tmp_path_factory.mktemp("forget-shop")
    manifest = write_shop(shop, users=300, items=150, days=90, seed=11, start=date(2024, 1, 1))
    events = pd.read_parquet(manifest["events"])
    buyers = events.loc[events["event_type"] == "purchase", "user_id"].value_counts()
    user, neighbour = str(buyers.index[0]), str(buyers.index[1])
    # quarantined lines: one of the customer's, one of a user whose id merely contains theirs
    bad = events[events["user_id"].isin([user, neighbour])].groupby("user_id").head(1).copy()
    bad["event_type"] = "teleport"
    bad.loc[bad["user_id"] == neighbour, "user_id"] = f"x{user}"
    pd.concat([events, bad], ignore_index=True).to_parquet(manifest["events"], index=False)

    settings = Settings(home=home)
    key = pseudonymise(user, settings.user_salt)
    first = parse_json(
        cli(
            home,
            "run",
            "--source",
            "events",
            "--data",
            manifest["events"],
            "--catalog",
            manifest["catalog"],
        ).stdout
    )
    # API feedback waiting for the next run: the customer's line must not come back through it
    settings.feedback_dir.mkdir(parents=True, exist_ok=True)
    feedback = [
        {
            "user_id": u,
            "item_id": str(events["item_id"].iloc[0]),
            "event_type": "click",
            "event_at": "2024-03-30T12:00:00+00:00",
            "session_id": "s-feedback",
        }
        for u in (user, neighbour)
    ]
    (settings.feedback_dir / "feedback-20240330.jsonl").write_text(
        "".join(json.dumps(x) + "\n" for x in feedback)
    )
    audit = parse_json(cli(home, "forget", user, "--requested-by", "dpo-ticket-42").stdout)
    second = parse_json(cli(home, "run").stdout)
    # files as the erasure and the next run left them (the API test below serves the customer
    # again afterwards: a list served after the erasure is new activity, logged as usual)
    files = traces.files(home, key, user)
    return {
        "files": files,
        "home": home,
        "shop": manifest,
        "events": events,
        "user": user,
        "neighbour": neighbour,
        "key": key,
        "settings": settings,
        "first": first,
        "audit": audit,
        "second": second,
    }


def test_the_audit_counts_what_was_erased(erased: dict) -> None:
    from recops.core.warehouse import Warehouse

    audit, events, user = erased["audit"], erased["events"], erased["user"]
    counts = audit["row_counts"]
    own = events[events["user_id"] == user]
    assert counts["raw.events"] == len(own)  # every line of the customer's, as loaded
    assert counts["raw.quarantine"] == 1  # theirs; not the one of f"x{user}"
    # staging's dedup key: user, item, type, time, order, quantity, price
    dedup = ["item_id", "event_type", "event_at", "quantity", "price"]
    assert counts["main.fct_interactions"] == len(own.drop_duplicates(dedup))
    assert counts["main.dim_users"] == 1
    for table in (
        "main.ml_user_features",
        "main.ml_user_item_features",
        "main.ml_ltr_labels",
        "feast.offline.ml_user_features.parquet",
        "feast.offline.ml_user_item_features.parquet",
        "feast.online.user_features",
        "feast.online.user_item_features",
        "runs.parquet_rows",
        "runs.bundles",
        "mlflow.parquet_rows",
        "mlflow.bundles",
    ):
        assert counts[table] > 0, table
    assert (
        counts["feast.offline.ml_user_item_features.parquet"]
        == counts["main.ml_user_item_features"]
    )
    assert counts["feedback.lines"] == 1
    assert audit["requested_by"] == "dpo-ticket-42" and audit["total"] == sum(counts.values())
    with Warehouse(erased["settings"], read_only=True) as wh:
        rows = wh.query_df("select * from raw.erasures")
    # (test_reingesting_does_not_bring_the_user_back may have erased again: its own row)
    ours = rows[rows["erasure_id"] == audit["erasure_id"]]
    assert len(ours) == 1 and json.loads(ours["row_counts"].iloc[0]) == counts
    # the audit holds no personal data: neither id, raw or pseudonymised
    assert user not in rows.to_json() and erased["key"] not in rows.to_json()


def test_after_the_next_run_no_table_mentions_the_user(erased: dict, traces) -> None:
    assert erased["second"]["state"] == "success"
    user, key = erased["user"], erased["key"]
    assert traces.warehouse(erased["settings"], [user, key], skip={SUPPRESSION}) == {}
    assert traces.warehouse(erased["settings"], [f"x{user}"])["raw.quarantine"] == 1
    # the neighbour's feedback line went through; the customer's did not
    assert traces.warehouse(erased["settings"], ["s-feedback"]) == {
        "raw.events": 1,
        "main.fct_interactions": 1,
        "main.stg_raw__events": 1,
    }


def test_no_file_feature_or_bundle_mentions_the_user(erased: dict) -> None:
    """Feast offline sources, the SQLite online store, run folders, MLflow artifacts (bundles
    and holdouts of both model versions), feedback files, logs and Data Docs."""
    settings = erased["settings"]
    assert erased["files"] == {}
    assert (settings.feature_data_dir / "ml_user_item_features.parquet").exists()
    assert list((settings.mlflow_dir).rglob("bundle.joblib")), "no bundle was checked"


def test_online_store_has_no_features_for_the_user(erased: dict) -> None:
    from recops.core.feature_store import get_store, online_features

    store = get_store(erased["settings"])
    items = erased["events"]["item_id"].astype(str).unique()[:20].tolist()
    gone = online_features(store, erased["key"], items)
    kept = online_features(
        store, pseudonymise(erased["neighbour"], erased["settings"].user_salt), items
    )
    user_cols = [
        c for c in gone.columns if c.startswith(("user_features__", "user_item_features__"))
    ]
    assert user_cols and gone[user_cols].isna().all().all()
    assert kept[[c for c in user_cols if c.startswith("user_features__")]].notna().any().any()


def test_the_api_treats_the_user_as_unknown(erased: dict) -> None:
    from fastapi.testclient import TestClient

    from recops.serving.main import create_app

    token = "forget-test-token-0123456789"
    app = create_app(erased["settings"].model_copy(update={"api_tokens": token}))
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        gone = client.get(f"/recommendations/{erased['user']}", params={"k": 10})
        known = client.get(f"/recommendations/{erased['neighbour']}", params={"k": 10})
    assert gone.status_code == 200 and known.status_code == 200
    assert gone.json()["fallback"] is True
    assert all(item["reasons"] == ["popular now"] for item in gone.json()["items"])
    assert known.json()["fallback"] is False


def test_reingesting_does_not_bring_the_user_back(erased: dict, traces) -> None:
    """The same file again is a duplicate batch; a new export with the old history loads into
    raw (documented) but staging drops it; activity after the erasure is processed as usual; a
    second `forget` clears raw again."""
    from recops.app.forget import forget_user
    from recops.core.dbt import run_dbt
    from recops.core.warehouse import Warehouse
    from recops.ingestion import ingest_events

    settings, user, key = erased["settings"], erased["user"], erased["key"]
    old = erased["events"][erased["events"]["user_id"] == user]
    replay = Path(erased["shop"]["events"]).with_name("replay.parquet")
    fresh = old.tail(1).assign(event_at=pd.Timestamp(datetime.now() + timedelta(days=1), tz="UTC"))
    pd.concat([old, fresh], ignore_index=True).to_parquet(replay, index=False)
    again = ingest_events(
        settings, Path(erased["shop"]["events"]), Path(erased["shop"]["catalog"])
    )
    assert again.duplicate_batch
    assert ingest_events(settings, replay).events_loaded == len(old) + 1
    run_dbt(
        settings,
        "run",
        vars={"cutoff": "2024-03-01"},
        select="stg_raw__events fct_interactions",
    )
    with Warehouse(settings, read_only=True) as wh:
        kept = wh.query_df(
            "select event_at from main.fct_interactions where user_id = ?", [key]
        )
    assert kept["event_at"].tolist() == [fresh["event_at"].iloc[0].tz_convert(None).floor("us")]

    audit = forget_user(settings, user)
    assert audit["row_counts"]["raw.events"] == len(old) + 1
    assert audit["row_counts"]["main.fct_interactions"] == 1
    assert traces.warehouse(settings, [user, key], skip={SUPPRESSION}) == {}
    with Warehouse(settings, read_only=True) as wh:
        assert int(wh.scalar("select count(*) from raw.erasures")) == 2
        assert int(wh.scalar(f"select count(*) from {SUPPRESSION} where user_key = ?", [key])) == 2
