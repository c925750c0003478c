"""What the operations page computes from Prometheus' text format: latency percentiles (as
``histogram_quantile``) and the share of cold-start responses; where a version's Airflow run is."""

from __future__ import annotations

import json
import math

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from recops.core.registry import airflow_run_link, pipeline_origin
from recops.core.settings import Settings
from recops.serving.operations import (
    LATENCY,
    LATENCY_BUCKETS,
    RESPONSES,
    histogram_quantile,
    latency_percentiles,
    responses_by_kind,
)

INF = math.inf


def test_histogram_quantile_interpolates_inside_the_bucket() -> None:
    buckets = [(0.01, 2), (0.05, 6), (0.1, 10), (INF, 10)]
    # rank 5 of 10 falls in (0.01, 0.05] holding ranks 3..6: 0.01 + 0.04 * (5 - 2) / (6 - 2)
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.04)
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.05 + 0.05 * 3.9 / 4)
    assert histogram_quantile(0.1, buckets) == pytest.approx(0.005)
    assert histogram_quantile(0.5, list(reversed(buckets))) == pytest.approx(0.04)  # order does not matter


def test_histogram_quantile_edges() -> None:
    assert histogram_quantile(0.5, [(0.1, 0), (INF, 0)]) is None
    assert histogram_quantile(0.5, []) is None
    assert histogram_quantile(0.9, [(0.1, 0), (0.5, 0), (INF, 4)]) == 0.5  # all beyond the last bound


def _exposition() -> str:
    registry = CollectorRegistry()
    latency = Histogram(LATENCY, "latency", ["handler", "method"], buckets=LATENCY_BUCKETS, registry=registry)
    for seconds in (0.003, 0.004, 0.004, 0.008, 0.02, 0.03, 0.03, 0.04, 0.07, 0.3):
        latency.labels(handler="/recommendations/{user_id}", method="GET").observe(seconds)
    for seconds in (0.001, 0.0015):
        latency.labels(handler="/feedback", method="POST").observe(seconds)
    latency.labels(handler="/health", method="GET")  # a route without requests: left out
    responses = Counter(RESPONSES, "lists", ["kind", "variant"], registry=registry)
    responses.labels(kind="personal", variant="champion").inc(6)
    responses.labels(kind="personal", variant="challenger").inc(2)
    responses.labels(kind="cold_start", variant="champion").inc(3)
    responses.labels(kind="store_unavailable", variant="champion").inc(1)
    return generate_latest(registry).decode()


def test_latency_percentiles_per_route_from_the_exposition() -> None:
    rows = latency_percentiles(_exposition())
    assert [(r["route"], r["method"], r["requests"]) for r in rows] == [
        ("/recommendations/{user_id}", "GET", 10), ("/feedback", "POST", 2)]
    recs = rows[0]
    # cumulative: <=0.005: 3, <=0.01: 4, <=0.025: 5, <=0.05: 8, <=0.1: 9, <=0.25: 9, <=0.5: 10
    assert recs["p50_ms"] == pytest.approx(1000 * 0.025)  # rank 5 is the last of (0.01, 0.025]
    assert recs["p90_ms"] == pytest.approx(1000 * 0.1)  # rank 9 ends (0.05, 0.1]
    assert recs["p99_ms"] == pytest.approx(1000 * (0.25 + 0.25 * 0.9), abs=0.01)  # rank 9.9 in (0.25, 0.5]
    assert rows[1]["p50_ms"] == pytest.approx(1000 * 0.002 * 1 / 2)


def test_cold_start_share_counts_fallbacks_of_every_variant() -> None:
    live = responses_by_kind(_exposition())
    assert live["by_kind"] == {"cold_start": 3, "personal": 8, "store_unavailable": 1}
    assert live["total"] == 12 and live["cold_start_share"] == pytest.approx(4 / 12, abs=1e-6)
    assert responses_by_kind("")["cold_start_share"] is None


def test_a_versions_airflow_run_is_the_pipeline_run_that_decided_on_it(tmp_path) -> None:
    moves = [
        {"alias": "challenger", "origin": "recops_pipeline/scheduled__2026-04-02T03:00:00+00:00"},
        {"alias": "champion", "origin": "cli"},
    ]
    tags = {"recops.alias_moves": json.dumps(moves), "alias.champion.origin": "recops_rollback/manual__x"}
    origin = pipeline_origin(tags)
    assert origin == "recops_pipeline/scheduled__2026-04-02T03:00:00+00:00"
    assert pipeline_origin({"alias.rejected.origin": "recops_pipeline/manual__1"}) == "recops_pipeline/manual__1"
    assert pipeline_origin({"alias.champion.origin": "cli"}) is None
    settings = Settings(home=tmp_path, airflow_ui_url="https://airflow.example/")
    assert airflow_run_link(settings, origin) == (
        "https://airflow.example/dags/recops_pipeline/runs/scheduled__2026-04-02T03%3A00%3A00%2B00%3A00")
    assert airflow_run_link(settings, None) is None
