"""What the operations page (``GET /ops``) shows, as one JSON document (``GET /ops/data``, scope
``admin``): the served champion and challenger, their online metrics per day (the
``online_metrics_daily`` mart the pipeline and ``recops_monitor`` build), what this service has
served since it started (responses by kind, latency percentiles per route: the same Prometheus
figures as ``/metrics``), the newest registered versions with their gate results, and links to
Airflow, MLflow and the Data Docs.

Every part is read on its own: a warehouse or registry that does not answer leaves an ``error``
in its part, never a failed page.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from recops.core.constants import CHALLENGER_ALIAS, CHAMPION_ALIAS, PIPELINE_DAG_ID
from recops.core.marts import online_metrics_daily, online_summary
from recops.core.registry import recent_versions
from recops.core.timeutil import now_utc
from recops.serving.model_state import ServingState
from recops.serving.recommender import COLD, DEGRADED

LATENCY = "http_request_duration_seconds"
RESPONSES = "recops_recommendation_responses"
QUANTILES = {"p50_ms": 0.5, "p90_ms": 0.9, "p99_ms": 0.99}
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Per-route latency buckets (seconds) of ``http_request_duration_seconds``: fine enough below
100 ms for the percentiles to mean something."""
DAILY = ("count_requests", "count_impressions", "count_fallback_requests", "count_clicks", "count_add_to_carts",
         "count_purchases", "ctr_rate", "add_to_cart_rate", "conversion_rate", "fallback_share_rate")


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of a cumulative histogram ``[(upper bound, count), ...]`` (ending with
    ``+Inf``), interpolated linearly inside its bucket as Prometheus' ``histogram_quantile``;
    ``None`` without observations. A quantile in the ``+Inf`` bucket is the largest finite bound."""
    buckets = sorted(buckets)
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * ((rank - below) / (count - below) if count > below else 1.0)
        lower, below = upper, count
    return lower


def latency_percentiles(exposition: str) -> list[dict[str, Any]]:
    """Per route and method: requests and the p50/p90/p99 latency in milliseconds, busiest first."""
    buckets: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for family in text_string_to_metric_families(exposition):
        if family.name != LATENCY:
            continue
        for sample in family.samples:
            if sample.name == f"{LATENCY}_bucket":
                key = (sample.labels.get("handler", ""), sample.labels.get("method", ""))
                buckets.setdefault(key, []).append((float(sample.labels["le"]), float(sample.value)))
    rows = []
    for (handler, method), series in buckets.items():
        count = max(c for _, c in series)
        if count <= 0:
            continue
        row: dict[str, Any] = {"route": handler, "method": method, "requests": int(count)}
        for name, q in QUANTILES.items():
            value = histogram_quantile(q, series)
            row[name] = None if value is None else round(1000 * value, 2)
        rows.append(row)
    return sorted(rows, key=lambda r: (-r["requests"], r["route"]))


def responses_by_kind(exposition: str) -> dict[str, Any]:
    """Ranked lists this service answered since it started, by kind, and the cold-start share."""
    kinds: dict[str, int] = {}
    for family in text_string_to_metric_families(exposition):
        if family.name != RESPONSES:
            continue
        for sample in family.samples:
            if sample.name == f"{RESPONSES}_total":
                kind = sample.labels.get("kind", "")
                kinds[kind] = kinds.get(kind, 0) + int(sample.value)
    total = sum(kinds.values())
    cold = kinds.get(COLD, 0) + kinds.get(DEGRADED, 0)
    return {"total": total, "by_kind": dict(sorted(kinds.items())),
            "cold_start_share": round(cold / total, 6) if total else None}


def online_days(settings) -> dict[str, Any]:
    """The daily online metrics per served version and variant, and their summary."""
    daily = online_metrics_daily(settings)
    rows = []
    for record in daily.to_dict("records"):
        row = {"served_date": str(record["served_date"])[:10], "model_version": str(record["model_version"]),
               "variant": str(record["variant"])}
        for column in DAILY:
            value = record.get(column)
            row[column] = None if value is None or value != value else (
                int(value) if column.startswith("count_") else round(float(value), 6))
        rows.append(row)
    return {"daily": rows, "summary": online_summary(daily)}


def served_models(state: ServingState) -> dict[str, Any]:
    """What this worker serves right now."""
    out: dict[str, Any] = {}
    for alias in (CHAMPION_ALIAS, CHALLENGER_ALIAS):
        model = state.model(alias)
        out[alias] = None if model is None else {
            "version": model.version, "loaded_at": model.loaded_at.isoformat(timespec="seconds"),
            "published_at": model.published_at, "as_of": model.meta.as_of,
        }
    out["challenger_traffic"] = state.settings.challenger_traffic
    return out


def _part(read: Callable[[], Any]) -> dict[str, Any]:
    """``{"data": ...}`` or ``{"error": ...}``: one unreachable source does not sink the page."""
    try:
        return {"data": read(), "error": None}
    except Exception as exc:  # DuckDB locked by a writer, registry down, ... shown on the page
        return {"data": None, "error": f"{type(exc).__name__}: {exc}"}


def ops_snapshot(state: ServingState, exposition: str) -> dict[str, Any]:
    """The operations page's data (see the module docstring)."""
    settings = state.settings
    return {
        "generated_at": now_utc().isoformat(timespec="seconds"),
        "model_name": settings.model_name,
        "served": served_models(state),
        "online": _part(lambda: online_days(settings)),
        "live": {"responses": responses_by_kind(exposition), "latency": latency_percentiles(exposition)},
        "runs": _part(lambda: recent_versions(settings, limit=10)),
        "links": {
            "airflow": f"{settings.airflow_url}/dags/{PIPELINE_DAG_ID}",
            "mlflow": f"{settings.mlflow_ui_url.rstrip('/')}/#/models/{settings.model_name}",
            "data_docs": settings.data_docs_link,
        },
    }
