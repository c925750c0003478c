"""``/metrics`` in Prometheus text format: request latency histograms per route and responses by
status (prometheus-fastapi-instrumentator), plus what the recommender did: responses by kind
(personal, cold start, store unavailable), cache hits and misses, candidates scored, the served
model versions.

With several workers, ``recops serve`` gives them ``PROMETHEUS_MULTIPROC_DIR`` (``env=``, before
``prometheus_client`` is imported) and every figure covers all of them (multiprocess mode).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)


@dataclass(frozen=True)
class ServingMetrics:
    responses: Counter
    cache: Counter
    candidates: Histogram
    model: Gauge


_METRICS: ServingMetrics | None = None


def serving_metrics() -> ServingMetrics:
    """The process's recommender metrics (created once: prometheus_client's registry is global)."""
    global _METRICS
    if _METRICS is None:
        _METRICS = ServingMetrics(
            responses=Counter(
                "recops_recommendation_responses", "Ranked lists served, by kind and variant", ["kind", "variant"]
            ),
            cache=Counter("recops_cache_lookups", "Ranked-list cache lookups", ["result"]),
            candidates=Histogram(
                "recops_candidates_scored", "Candidates scored per personal response",
                buckets=(10, 25, 50, 100, 150, 200, 300, 500),
            ),
            model=Gauge(
                "recops_model_version_info", "Model version served, by alias (1 = serving)",
                ["alias", "version"], multiprocess_mode="max",
            ),
        )
    return _METRICS


def http_registry() -> CollectorRegistry:
    """A registry for one app's HTTP metrics (prometheus-fastapi-instrumentator). The instrumentator
    records nothing when its metrics already exist in the registry it is given, so every app built
    in a process (tests build several) gets its own."""
    return CollectorRegistry()


def exposition(http: CollectorRegistry | None = None) -> tuple[bytes, str]:
    """The text exposition of every metric of this process (the recommender's, and the app's HTTP
    metrics in ``http``), or of every worker when the metrics are kept in files
    (prometheus_client decided when first imported, from ``PROMETHEUS_MULTIPROC_DIR``; asking it,
    not the environment now, keeps the two consistent)."""
    if values.ValueClass is values.MutexValue:
        body = generate_latest(REGISTRY) + (generate_latest(http) if http is not None else b"")
        return body, CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST
