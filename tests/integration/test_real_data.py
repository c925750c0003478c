"""Real shop data through the whole DAG (the real CLI, Airflow ``dag.test``, dbt, GX, Feast, MLflow):

- UCI Online Retail II 2009-2010: ``recops ingest online-retail`` then ``recops run --cutoff
  2010-11-01``; the evaluation reports protocol v1 (../shared/DESIGN.md) for the ranker and each
  retriever on the same users, plus cold users, and the ranker beats popularity.
- The same retailer in the *original* UCI layout (InvoiceNo, UnitPrice, CustomerID; a CSV as the
  common exports write it: ``m/d/Y H:M`` dates, ``17850.0`` ids, latin-1): a slice converted from
  the II file loads into the same raw events as the II layout and runs through the pipeline.
- MovieLens 100K: the ranker beats popularity.

Expected numbers are computed here from the source files with pandas, independently of the code
under test. Wall times per command and per DAG task are printed (run with ``-s``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recops.core.privacy import pseudonymise
from recops.core.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.full_data]

REPO = Path(__file__).resolve().parents[2]
RETAIL_II = "online_retail_ii_2009_2010/online_retail_ii_2009_2010.parquet"  # under RECOPS_DATA_DIR
MOVIELENS = "movielens_100k"
MODELS = ("ranker", "popularity", "repeat", "itemcf", "als", "content")
METRICS = ("ndcg@10", "recall@10", "hitrate@10", "map@10", "coverage", "n_users")
MARTS = (
    "fct_interactions",
    "dim_items",
    "dim_users",
    "ml_user_features",
    "ml_item_features",
    "ml_user_item_features",
    "ml_ltr_labels",
)
RETRIEVERS = ("popularity", "repeat", "itemcf", "als", "content")
MIN_NDCG, MIN_RATIO = 0.40, 1.08
CUTOFF = "2010-11-01"


ORIGINAL_SLICE_START, ORIGINAL_CUTOFF = "2010-08-01", "2010-11-15"

_TASK_LINE = re.compile(r"^(\S+)Z .*\[DAG TEST\] (starting|end task) task_id=(\S+)", re.M)




def task_seconds(stdout: str) -> dict[str, float]:
    """Wall seconds per DAG task from ``recops run``'s log (retries summed)."""
    started: dict[str, datetime] = {}
    took: dict[str, float] = {}
    for stamp, what, task in _TASK_LINE.findall(stdout):
        at = datetime.fromisoformat(stamp)
        if what == "starting":
            started[task] = at
        elif task in started:
            took[task] = round(took.get(task, 0.0) + (at - started.pop(task)).total_seconds(), 1)
    return took


def timed(fn: Callable, *args, **kwargs) -> tuple[object, float]:
    began = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, round(time.perf_counter() - began, 1)


def report_timings(name: str, timings: dict[str, float], tasks: dict[str, float]) -> None:
    lines = [f"\n[{name}] wall seconds: " + ", ".join(f"{k} {v}" for k, v in timings.items())]
    lines += [f"    {task:<26}{sec:8.1f}" for task, sec in tasks.items()]
    print("\n".join(lines))


# --- expectations from the source file (pandas, independent of the code under test) -----------
def expected_retail(lines: pd.DataFrame, cutoff: str) -> dict:
    """Ingest accounting, mart grains and protocol-v1 user counts of II-layout invoice lines."""
    invoice = lines["Invoice"].astype(str).str.strip()
    cancel = invoice.str.upper().str.startswith("C")
    bad_quantity = ~cancel & (lines["Quantity"] <= 0)
    bad_price = ~cancel & ~bad_quantity & (lines["Price"] <= 0)
    loaded = lines[~(bad_quantity | bad_price)]
    code = loaded["StockCode"].astype(str).str.strip()
    product = code.str.match(r"^\d{5}")
    known = loaded[product & loaded["Customer ID"].notna()].assign(
        user_id=lambda f: f["Customer ID"].astype("int64").astype(str),
        event_type=lambda f: np.where(
            f["Invoice"].astype(str).str.upper().str.startswith("C"), "return", "purchase"
        ),
        quantity=lambda f: f["Quantity"].abs(),
        event_at=lambda f: pd.to_datetime(f["InvoiceDate"]),
    )
    key = ["user_id", "StockCode", "event_type", "event_at", "Invoice", "quantity", "Price"]
    bought = known[known["event_type"] == "purchase"]
    history = set(bought.loc[bought["event_at"] < pd.Timestamp(cutoff), "user_id"])
    test = set(bought.loc[bought["event_at"] >= pd.Timestamp(cutoff), "user_id"])
    return {
        "rows_in": len(lines),
        "rows_loaded": len(loaded),
        "quarantine_reasons": {
            k: int(v)
            for k, v in {
                "non_positive_quantity": bad_quantity.sum(),
                "non_positive_price": bad_price.sum(),
            }.items()
            if v
        },
        "items": int(code[product].nunique()),
        "fct_interactions": len(known.drop_duplicates(key)),
        "dim_users": int(known["user_id"].nunique()),
        "eval_users": len(history & test),
        "cold_users": len(test - history),
        "top_customer": str(bought["user_id"].value_counts().index[0]),
    }


def to_original_layout(lines: pd.DataFrame, path: Path) -> Path:
    """Write II-layout lines as the original UCI layout, the way common CSV exports look."""
    at = pd.to_datetime(lines["InvoiceDate"])
    original = pd.DataFrame(
        {
            "InvoiceNo": lines["Invoice"],
            "StockCode": lines["StockCode"],
            "Description": lines["Description"],
            "Quantity": lines["Quantity"],
            "InvoiceDate": at.dt.month.astype(str)
            + "/"
            + at.dt.day.astype(str)
            + "/"
            + at.dt.year.astype(str)
            + " "
            + at.dt.hour.astype(str)
            + ":"
            + at.dt.strftime("%M"),
            "UnitPrice": lines["Price"],
            "CustomerID": lines["Customer ID"],  # float: 17850.0, blank for guests
            "Country": lines["Country"],
        }
    )
    original.to_csv(path, index=False, encoding="latin-1")
    return path


def check_evaluation(report: dict, expected: dict | None = None) -> None:
    """Protocol v1 for the ranker and every retriever on the same users, cold users apart."""
    metrics = report["metrics"]
    assert report["protocol"] == "v1"
    assert set(MODELS) <= set(metrics), sorted(metrics)
    for model in MODELS:
        assert set(METRICS) <= set(metrics[model]), (model, sorted(metrics[model]))
        for name in METRICS[:-1]:
            assert 0.0 <= metrics[model][name] <= 1.0, (model, name, metrics[model][name])
    users = {metrics[m]["n_users"] for m in MODELS}
    assert len(users) == 1 and users.pop() > 0, "not evaluated on the same users"
    cold = report["cold_metrics"]
    assert {"ranker", "popularity"} <= set(cold)
    assert cold["ranker"]["n_users"] == cold["popularity"]["n_users"]
    if expected is not None:
        assert metrics["ranker"]["n_users"] == expected["eval_users"]
        assert cold["ranker"]["n_users"] == expected["cold_users"]
    assert metrics["ranker"]["ndcg@10"] > metrics["popularity"]["ndcg@10"]


def mart_counts(settings: Settings) -> dict[str, int]:
    from recops.core.dbt import mart_row_counts

    return mart_row_counts(settings)


# --- UCI Online Retail II ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def retail_ii(tmp_path_factory: pytest.TempPathFactory, cli, parse_json, dataset) -> dict:
    source = dataset(RETAIL_II)
    home = tmp_path_factory.mktemp("retail-ii-home")
    ingest, ingest_s = timed(cli, home, "ingest", "online-retail", str(source))
    run, run_s = timed(cli, home, "run", "--cutoff", "2010-11-01", timeout=3600)
    evaluation, eval_s = timed(cli, home, "evaluate", "--json")
    tasks = task_seconds(run.stdout)
    report_timings(
        "Online Retail II", {"ingest": ingest_s, "run": run_s, "evaluate": eval_s}, tasks
    )
    return {
        "home": home,
        "settings": Settings(home=home),
        "ingest": parse_json(ingest.stdout),
        "run": parse_json(run.stdout),
        "evaluation": parse_json(evaluation.stdout),
        "expected": expected_retail(pd.read_parquet(source), CUTOFF),
    }


def test_retail_ii_ingest_accounts_for_every_line(retail_ii: dict) -> None:
    summary, expected = retail_ii["ingest"], retail_ii["expected"]
    assert summary["rows_in"] == expected["rows_in"] == 525_461
    assert summary["rows_loaded"] == summary["events_loaded"] == expected["rows_loaded"]
    assert summary["rows_quarantined"] == summary["rows_in"] - summary["rows_loaded"]
    assert summary["quarantine_reasons"] == expected["quarantine_reasons"]
    assert summary["items_loaded"] == expected["items"]
    assert summary["status"] == "loaded" and not summary["duplicate_batch"]


def test_retail_ii_pipeline_and_marts(retail_ii: dict) -> None:
    run, expected = retail_ii["run"], retail_ii["expected"]
    assert run["state"] == "success", run["tasks"]
    counts = mart_counts(retail_ii["settings"])
    assert counts["fct_interactions"] == expected["fct_interactions"]
    assert counts["dim_users"] == expected["dim_users"]
    assert counts["dim_items"] == expected["items"]  # product stock codes only
    assert all(counts[t] > 0 for t in MARTS), counts


def test_retail_ii_evaluation_reports_protocol_v1(retail_ii: dict) -> None:
    report = retail_ii["evaluation"]
    assert report["cutoff"] == "2010-11-01"
    check_evaluation(report, retail_ii["expected"])
    print("\nOnline Retail II, cutoff 2010-11-01 (protocol v1)")
    for group in ("metrics", "cold_metrics"):
        for model, values in report[group].items():
            print(
                f"  {group[:4]:<5}{model:<12}"
                + "".join(f"{m} {values[m]:.4f}  " for m in METRICS[:-1])
                + f"n_users {int(values['n_users'])}"
            )


@pytest.fixture(scope="module")
def retail_report(retail_ii: dict) -> dict:
    """The run folder's evaluation report (feature columns and importance included)."""
    runs = sorted((retail_ii["home"] / "runs").glob("*/evaluation.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(runs[-1].read_text())


def test_retail_ii_every_model_is_reported_on_the_same_users(retail_report: dict) -> None:
    assert retail_report["cutoff"] == CUTOFF and retail_report["protocol"] == "v1"
    metrics = retail_report["metrics"]
    assert set(metrics) == {"ranker", *RETRIEVERS}
    users = {m["n_users"] for m in metrics.values()}
    assert len(users) == 1 and users.pop() > 1000
    assert all(set(METRICS) <= set(m) for m in metrics.values())
    cold = retail_report["cold_metrics"]
    assert {"ranker", "popularity"} <= set(cold)
    assert cold["ranker"]["n_users"] > 0 and set(METRICS) <= set(cold["ranker"])
    print(f"\nOnline Retail II, cutoff {CUTOFF}, protocol v1")
    for group in ("metrics", "cold_metrics"):
        for model, values in retail_report[group].items():
            cells = "  ".join(f"{m} {values[m]:.4f}" for m in METRICS[:-1])
            print(f"  {group[:4]:<5}{model:<12}{cells}  n_users {int(values['n_users'])}")


def test_retail_ii_ranker_beats_every_single_retriever(retail_report: dict, retail_ii: dict) -> None:
    metrics = retail_report["metrics"]
    ranker = metrics["ranker"]["ndcg@10"]
    best = max(RETRIEVERS, key=lambda name: metrics[name]["ndcg@10"])
    ratio = ranker / metrics[best]["ndcg@10"]
    print(f"\nranker NDCG@10 {ranker:.4f}, best single {best} {metrics[best]['ndcg@10']:.4f}: x{ratio:.3f}")
    assert ranker >= MIN_NDCG
    assert ratio >= MIN_RATIO
    for metric in ("recall@10", "hitrate@10", "map@10"):
        assert metrics["ranker"][metric] >= max(metrics[name][metric] for name in RETRIEVERS)


def test_retail_ii_ranker_reads_the_feature_service(retail_report: dict) -> None:
    """The Feast features are real inputs: present, mostly non-null, and used by the trees."""
    store = [c for c in retail_report["feature_cols"] if "__" in c]
    views = {c.split("__")[0] for c in store}
    assert views == {"user_features", "item_features", "user_item_features"}
    gain = {row["feature"]: row["gain"] for row in retail_report["feature_importance"]}
    for view in views:
        assert sum(gain[c] for c in store if c.startswith(view + "__")) > 0, view


def test_retail_ii_mlflow_holds_params_metrics_and_pictures(retail_ii: dict) -> None:
    """The champion's MLflow run, as the pipeline registered it."""
    from recops.core.constants import CHAMPION_ALIAS
    from recops.training.registry import alias_version, client

    settings = retail_ii["settings"]
    c = client(settings)
    run = c.get_run(c.get_model_version(settings.model_name, alias_version(settings, CHAMPION_ALIAS)).run_id)
    artifacts = {a.path for folder in ("plots", "tables") for a in c.list_artifacts(run.info.run_id, folder)}
    params, metrics = run.data.params, run.data.metrics
    assert params["feature_service"] == "ranker_v1"
    assert "user_features__count_purchases_90d" in json.loads(params["feature_service.features"])
    assert params["data_interval_end"].startswith("2010-12-10")
    assert int(params["rows.training_rows"]) > 0 and int(params["rows.eval_users"]) > 1000
    assert params["ranker.label_gain"] == "[0.0, 1.0, 3.0, 7.0]"
    assert "ndcg_at_10" in metrics  # the ranker's own metrics carry no prefix
    for model in RETRIEVERS:
        assert f"{model}.ndcg_at_10" in metrics and f"{model}.coverage" in metrics
    assert "cold_ranker.ndcg_at_10" in metrics and "cold_popularity.ndcg_at_10" in metrics
    assert {
        "plots/feature_importance.png",
        "plots/metrics_by_k.png",
        "plots/ndcg_by_k.png",
        "tables/feature_importance.csv",
        "tables/metrics_by_k.csv",
    } <= artifacts


# --- the original UCI layout ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def retail_original(tmp_path_factory: pytest.TempPathFactory, cli, parse_json, dataset) -> dict:
    lines = pd.read_parquet(dataset(RETAIL_II))
    lines = lines[pd.to_datetime(lines["InvoiceDate"]) >= pd.Timestamp(ORIGINAL_SLICE_START)]
    home = tmp_path_factory.mktemp("retail-original-home")
    csv = to_original_layout(
        lines, tmp_path_factory.mktemp("retail-original") / "online_retail.csv"
    )
    ingest, ingest_s = timed(cli, home, "ingest", "online-retail", str(csv))
    run, run_s = timed(cli, home, "run", "--cutoff", ORIGINAL_CUTOFF, timeout=3600)
    evaluation, eval_s = timed(cli, home, "evaluate", "--json")
    report_timings(
        "Online Retail, original layout",
        {"ingest": ingest_s, "run": run_s, "evaluate": eval_s},
        task_seconds(run.stdout),
    )
    # the same lines in the II layout, loaded into a scratch warehouse, for comparison
    twin = Settings(home=tmp_path_factory.mktemp("retail-twin-home"))
    twin_file = csv.with_name("online_retail_ii.parquet")
    lines.to_parquet(twin_file, index=False)
    return {
        "home": home,
        "settings": Settings(home=home),
        "ingest": parse_json(ingest.stdout),
        "run": parse_json(run.stdout),
        "evaluation": parse_json(evaluation.stdout),
        "expected": expected_retail(lines.reset_index(drop=True), ORIGINAL_CUTOFF),
        "twin": twin,
        "twin_file": twin_file,
    }


def _raw_events(settings: Settings) -> pd.DataFrame:
    from recops.core.warehouse import Warehouse

    cols = "user_id, item_id, event_type, event_at, quantity, price_amount, order_id, session_id, country"
    with Warehouse(settings, read_only=True) as wh:
        frame = wh.query_df(f"select {cols} from raw.events")
    return frame.sort_values(cols.split(", "), na_position="first", ignore_index=True)


def test_original_layout_loads_the_same_events_as_the_ii_layout(retail_original: dict) -> None:
    from recops.ingestion import ingest_online_retail

    summary, expected = retail_original["ingest"], retail_original["expected"]
    assert summary["rows_in"] == expected["rows_in"]
    assert summary["rows_loaded"] == expected["rows_loaded"]
    assert summary["quarantine_reasons"] == expected["quarantine_reasons"]
    assert summary["items_loaded"] == expected["items"]
    twin = ingest_online_retail(retail_original["twin"], retail_original["twin_file"])
    assert twin.rows_loaded == summary["rows_loaded"]
    original, ii = _raw_events(retail_original["settings"]), _raw_events(retail_original["twin"])
    assert not original["user_id"].dropna().str.contains(r"\.").any()  # 17850.0 -> 17850
    pd.testing.assert_frame_equal(original, ii, check_dtype=False)


def test_original_layout_runs_through_the_pipeline(retail_original: dict) -> None:
    expected = retail_original["expected"]
    assert retail_original["run"]["state"] == "success", retail_original["run"]["tasks"]
    counts = mart_counts(retail_original["settings"])
    assert counts["fct_interactions"] == expected["fct_interactions"]
    assert counts["dim_users"] == expected["dim_users"]
    assert all(counts[t] > 0 for t in MARTS), counts
    assert retail_original["evaluation"]["cutoff"] == ORIGINAL_CUTOFF
    check_evaluation(retail_original["evaluation"], expected)


def test_original_layout_customer_gets_personal_recommendations(retail_original: dict) -> None:
    """The API pseudonymises "17850" exactly as staging did "17850.0" from the CSV."""
    from fastapi.testclient import TestClient

    from recops.serving.main import create_app

    settings, customer = retail_original["settings"], retail_original["expected"]["top_customer"]
    token = "real-data-test-token-0123456789"
    with TestClient(create_app(settings.model_copy(update={"api_tokens": token}))) as client:
        resp = client.get(f"/recommendations/{customer}", params={"k": 10}, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["fallback"] is False and len(body["items"]) == 10
    assert all(item["reasons"] for item in body["items"])
    assert pseudonymise(customer, settings.user_salt) != customer


# --- MovieLens 100K ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def movielens(tmp_path_factory: pytest.TempPathFactory, cli, parse_json, dataset) -> dict:
    source = dataset(MOVIELENS)
    home = tmp_path_factory.mktemp("movielens-home")
    ingest, ingest_s = timed(cli, home, "ingest", "movielens", str(source))
    run, run_s = timed(cli, home, "run", timeout=3600)
    evaluation, eval_s = timed(cli, home, "evaluate", "--json")
    report_timings(
        "MovieLens 100K",
        {"ingest": ingest_s, "run": run_s, "evaluate": eval_s},
        task_seconds(run.stdout),
    )
    return {
        "source": source,
        "ingest": parse_json(ingest.stdout),
        "run": parse_json(run.stdout),
        "evaluation": parse_json(evaluation.stdout),
    }


def test_movielens_ranker_beats_popularity(movielens: dict) -> None:
    ratings = pd.read_csv(movielens["source"] / "u.data", sep="\t", header=None)
    summary = movielens["ingest"]
    assert summary["events_loaded"] == len(ratings) == 100_000
    assert summary["rows_in"] == summary["rows_loaded"] + summary["rows_quarantined"]
    assert movielens["run"]["state"] == "success", movielens["run"]["tasks"]
    check_evaluation(movielens["evaluation"])
    metrics = movielens["evaluation"]["metrics"]
    print(
        f"\nMovieLens 100K: ranker ndcg@10 {metrics['ranker']['ndcg@10']:.4f} vs popularity "
        f"{metrics['popularity']['ndcg@10']:.4f} on {int(metrics['ranker']['n_users'])} users"
    )
