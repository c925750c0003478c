"""The whole DAG on a small synthetic shop (embedded default), asserting on every stage's output."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from recops.core.privacy import pseudonymise
from recops.core.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def shop_run(shop_home, cli, parse_json) -> dict:
    """The session's shared shop home (built once, read here) and its evaluation."""
    evaluation = parse_json(cli(shop_home.home, "evaluate", "--json").stdout)
    return {"home": shop_home.home, "shop": shop_home.shop, "run": shop_home.run,
            "evaluation": evaluation, "settings": shop_home.settings}


def test_every_task_succeeded(shop_run: dict) -> None:
    tasks = shop_run["run"]["tasks"]
    assert shop_run["run"]["state"] == "success"
    assert set(tasks) >= {"ingest", "dbt_build", "validate_marts", "feast_apply",
                          "build_training_set", "train_evaluate", "register_model", "promotion_gate"}
    assert {s for t, s in tasks.items() if not t.startswith("approve")} <= {"success", "skipped"}


def test_marts_hold_the_shop(shop_run: dict) -> None:
    from recops.core.warehouse import Warehouse

    events = pd.read_parquet(shop_run["shop"] / "events.parquet")
    catalog = pd.read_parquet(shop_run["shop"] / "catalog.parquet")
    with Warehouse(shop_run["settings"], read_only=True) as wh:
        counts = {t: int(wh.scalar(f"select count(*) from main.{t}")) for t in (
            "fct_interactions", "dim_items", "dim_users", "ml_user_features", "ml_item_features",
            "ml_user_item_features", "ml_ltr_labels")}
        purchases = int(wh.scalar("select count(*) from main.fct_interactions where event_type = 'purchase'"))
        ids = set(wh.query_df("select user_id from main.dim_users")["user_id"])
    dedup_keys = ["user_id", "item_id", "event_type", "event_at", "quantity", "price"]
    assert counts["fct_interactions"] == len(events.drop_duplicates(dedup_keys))
    assert purchases == len(events[events.event_type == "purchase"].drop_duplicates(dedup_keys))
    assert counts["dim_items"] == catalog["item_id"].nunique()
    assert counts["dim_users"] == events["user_id"].nunique()
    assert all(c > 0 for c in counts.values()), counts
    # pseudonymised: the shop's ids never reach the marts
    first = str(events["user_id"].iloc[0])
    assert first not in ids and pseudonymise(first, shop_run["settings"].user_salt) in ids


def test_quality_gates_passed_with_data_docs(shop_run: dict) -> None:
    home: Path = shop_run["home"]
    docs = list((home / "quality").rglob("index.html"))
    assert docs, "GX Data Docs were not built"
    alerts = home / "alerts.jsonl"
    errors = [json.loads(x) for x in alerts.read_text().splitlines()] if alerts.exists() else []
    assert not [a for a in errors if a.get("severity") == "error"], errors


def test_online_features_for_a_known_user(shop_run: dict) -> None:
    from recops.core.feature_store import get_store, online_features

    settings: Settings = shop_run["settings"]
    events = pd.read_parquet(shop_run["shop"] / "events.parquet")
    buys = events[events.event_type == "purchase"]
    user = str(buys["user_id"].value_counts().index[0])
    snapshot = (events["event_at"].max().normalize() + timedelta(days=1)).tz_localize(None)
    at = pd.to_datetime(buys["event_at"]).dt.tz_localize(None)
    mine = buys[(buys["user_id"].astype(str) == user) & (at >= snapshot - timedelta(days=90)) & (at < snapshot)]
    expected = len(mine.drop_duplicates(["item_id", "event_at", "quantity", "price"]))
    item = str(mine["item_id"].iloc[0])
    feats = online_features(get_store(settings), pseudonymise(user, settings.user_salt), [item])
    assert int(feats["user_features__count_purchases_90d"].iloc[0]) == expected
    assert int(feats["user_item_features__count_purchases"].iloc[0]) >= 1


def test_champion_registered_with_metrics(shop_run: dict) -> None:
    from recops.training.registry import alias_version, client

    settings: Settings = shop_run["settings"]
    version = alias_version(settings, "champion")
    assert version == "1"
    mv = client(settings).get_model_version(settings.model_name, version)
    metrics = client(settings).get_run(mv.run_id).data.metrics
    assert 0 < metrics["ndcg_at_10"] <= 1
    assert "popularity.ndcg_at_10" in metrics
    # the home's tuned settings (tests/conftest.py, as `recops tune` writes them) were applied
    run = client(settings).get_run(mv.run_id).data
    assert run.params["ranker.num_leaves"] == "15" and run.params["retrievers.repeat_popularity_weight"] == "1.0"
    assert run.tags["recops.tuning.cutoff"] == "2000-01-01"
    assert run.tags["recops.tuning.closed_before_cutoff"] == "true"


def test_ranker_beats_popularity(shop_run: dict) -> None:
    m = shop_run["evaluation"]["metrics"]
    assert set(m) >= {"ranker", "popularity", "repeat", "itemcf", "als", "content"}
    assert m["ranker"]["n_users"] == m["popularity"]["n_users"] > 0
    assert m["ranker"]["ndcg@10"] > m["popularity"]["ndcg@10"]


def test_recops_tune_on_a_pipeline_home(shop_run: dict, tmp_path: Path, cli, parse_json) -> None:
    """`recops tune` on a home the pipeline made (marts, Feast): one closed fold before the
    pipeline's cutoff, every trial in MLflow, the chosen settings written where training reads them;
    a fold without enough history is a one-line error."""
    import shutil

    from recops.core.registry import client

    # a whole copy: tuning only reads Feast's offline store (its registry names the original's files)
    home = shutil.copytree(shop_run["home"], tmp_path / "home")
    small = {"RECOPS_TUNING_FOLDS": "1", "RECOPS_LABEL_WINDOWS": "1"}
    result = parse_json(cli(home, "tune", "--json", extra_env=small).stdout)
    (fold,) = result["folds"]
    assert pd.Timestamp(fold["end"]) <= pd.Timestamp(result["cutoff"])
    assert json.loads((home / "tuning" / "tuned_settings.json").read_text())["settings"] == result["settings"]
    assert {"repeat_popularity_weight", "ranker_num_leaves"} <= set(result["settings"])
    settings = Settings(home=home)
    c = client(settings)
    experiment = c.get_experiment_by_name(f"{settings.experiment_name}-tuning")
    children = c.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{result['mlflow_run_id']}'")
    assert len(children) == result["trials"] > 20

    failed = cli(home, "tune", "--no-mlflow", extra_env={"RECOPS_TUNING_FOLDS": "3"}, check=False)
    assert failed.returncode == 1
    assert "tune failed: fold" in failed.stderr and "label window" in failed.stderr and "Traceback" not in failed.stderr
