"""Run pandas frames through GX suites with a file context rooted at ``settings.quality_dir``.

Each frame gets its own GX Checkpoint (named after its suite); once a stage's frames are
validated, their Data Docs pages and the index under
``<quality_dir>/gx/uncommitted/data_docs/local_site/`` are rendered in one build. The GX results
are turned into :class:`~recops.quality.results.FailedExpectation` rows carrying severity,
observed value and threshold.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

from recops.core.settings import Settings
from recops.quality.paths import SITE_NAME
from recops.quality.results import ERROR, SEVERITIES, FailedExpectation, Severity

log = logging.getLogger(__name__)

DATASOURCE = "recops_frames"
BATCH_DEFINITION = "whole_frame"
DATA_DOCS_INDEX_LIMIT = 500
"""The Data Docs index lists the newest this-many validations (older pages stay on disk);
without a cap GX re-reads every stored result on each index build."""
EXAMPLES = 5

_NOT_THRESHOLD = {
    "batch_id",
    "column",
    "column_A",
    "column_B",
    "column_list",
    "result_format",
    "catch_exceptions",
    "meta",
    "row_condition",
    "condition_parser",
    "ignore_row_if",
}


@dataclass
class FrameCheck:
    """One frame to validate against one suite."""

    suite: Any  # gx.ExpectationSuite
    frame: pd.DataFrame
    batch_id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    index_columns: tuple[str, ...] = ()


@dataclass
class CheckOutcome:
    suite: str
    batch_id: str | None
    success: bool
    failures: list[FailedExpectation]
    data_docs_path: str | None
    statistics: dict[str, Any]


def get_context(settings: Settings):  # -> great_expectations FileDataContext
    """The GX file context under ``settings.quality_dir`` (created on first use)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    settings.quality_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=settings.quality_dir)
    changed = False
    bars = context.variables.progress_bars
    globally = bars.get("globally") if isinstance(bars, dict) else getattr(bars, "globally", None)
    if globally is not False:
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        changed = True
    site = dict(context.variables.data_docs_sites or {}).get(SITE_NAME, {})
    wanted_index = {
        "class_name": "DefaultSiteIndexBuilder",
        "validation_results_limit": DATA_DOCS_INDEX_LIMIT,
    }
    if (
        site.get("site_index_builder") != wanted_index
        or site.get("show_how_to_buttons") is not False
    ):
        site = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": f"uncommitted/data_docs/{SITE_NAME}/",
            },
            "site_index_builder": wanted_index,
        }
        sites = dict(context.variables.data_docs_sites or {})
        sites[SITE_NAME] = site
        context.variables.data_docs_sites = sites
        changed = True
    if context.variables.config_variables_file_path:
        # Unused here, and GX re-reads and re-parses that YAML file on every access to a context
        # variable (hundreds of times per validation: ~1.5 s per stage).
        context.variables.config_variables_file_path = None
        changed = True
    if changed:
        context.variables.save()
        context = gx.get_context(mode="file", project_root_dir=settings.quality_dir)
    return context


def _batch_definition(context, asset_name: str):
    try:
        datasource = context.data_sources.get(DATASOURCE)
    except KeyError:
        datasource = context.data_sources.add_pandas(DATASOURCE)
    try:
        asset = datasource.get_asset(asset_name)
    except LookupError:
        asset = datasource.add_dataframe_asset(asset_name)
    try:
        return asset.get_batch_definition(BATCH_DEFINITION)
    except KeyError:
        return asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)


def columns_used(suite: Any) -> set[str]:
    """Every column an expectation of ``suite`` reads (to load no more than needed)."""
    used: set[str] = set()
    for expectation in suite.expectations:
        kwargs = expectation.configuration.kwargs
        used.update(str(kwargs[k]) for k in ("column", "column_A", "column_B") if kwargs.get(k))
        used.update(str(c) for c in kwargs.get("column_list") or [])
    return used


def jsonable(value: Any) -> Any:
    """Numpy/pandas scalars, timestamps and NaN made JSON-friendly (recursively)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    if isinstance(value, bool | int | str):
        return value
    return str(value)


def _exception_message(exception_info: Any) -> str | None:
    if not exception_info:
        return None
    if isinstance(exception_info, dict) and "raised_exception" in exception_info:
        infos = [exception_info]
    elif isinstance(exception_info, dict):
        infos = [v for v in exception_info.values() if isinstance(v, dict)]
    else:
        infos = [getattr(exception_info, "__dict__", {})]
    for info in infos:
        if info.get("raised_exception"):
            return str(info.get("exception_message") or "exception while validating")
    return None


def _examples(result: dict[str, Any]) -> list[Any]:
    """Distinct unexpected values, most frequent first."""
    counts = result.get("partial_unexpected_counts") or []
    if counts and isinstance(counts[0], dict) and "value" in counts[0]:
        return jsonable([c["value"] for c in counts[:EXAMPLES]])
    seen: list[Any] = []
    for value in jsonable(result.get("partial_unexpected_list") or []):
        if value not in seen:
            seen.append(value)
    return seen[:EXAMPLES]


def _observed(result: dict[str, Any], exception: str | None) -> Any:
    if exception:
        return {"exception": exception}
    if "observed_value" in result:
        return jsonable(result["observed_value"])
    if "unexpected_count" in result:
        observed = {
            "unexpected_count": jsonable(result.get("unexpected_count")),
            "unexpected_percent": round(float(result.get("unexpected_percent") or 0.0), 4),
            "element_count": jsonable(result.get("element_count")),
            "examples": _examples(result),
        }
        index = result.get("partial_unexpected_index_list") or []
        if index and isinstance(index[0], dict):
            observed["unexpected_rows"] = jsonable(index[:EXAMPLES])
        return observed
    return jsonable(result)


def _column(kwargs: dict[str, Any]) -> str | None:
    if kwargs.get("column"):
        return str(kwargs["column"])
    if kwargs.get("column_A"):
        return f"{kwargs['column_A']} > {kwargs['column_B']}"
    if kwargs.get("column_list"):
        return ", ".join(kwargs["column_list"])
    return None


def failures_from_validation(validation: Any, *, batch_id: str | None) -> list[FailedExpectation]:
    """Failed expectations of one GX suite validation result, tier-deduplicated."""
    suite_name = validation.suite_name
    failed: list[tuple[str | None, FailedExpectation]] = []
    for r in validation.results:
        if r.success:
            continue
        config = r.expectation_config
        meta = dict(config.meta or {})
        severity: Severity = meta.get("severity", ERROR)
        if severity not in SEVERITIES:
            severity = ERROR
        kwargs = dict(config.kwargs)
        exception = _exception_message(r.exception_info)
        result = dict(r.result or {})
        details: dict[str, Any] = {}
        if result.get("details"):
            details.update(jsonable(result["details"]))
        if kwargs.get("row_condition"):
            details["row_condition"] = str(kwargs["row_condition"])
        threshold = {
            k: jsonable(v) for k, v in kwargs.items() if k not in _NOT_THRESHOLD and v is not None
        }
        if not any(k != "mostly" for k in threshold):  # e.g. unique / not null: the rule itself
            threshold = {"rule": config.type.removeprefix("expect_"), **threshold}
        failed.append(
            (
                meta.get("tier"),
                FailedExpectation(
                    expectation=config.type,
                    column=_column(kwargs),
                    severity=severity,
                    observed=_observed(result, exception),
                    threshold=threshold,
                    details=details,
                    suite=suite_name,
                    batch_id=batch_id,
                    description=meta.get("description"),
                ),
            )
        )
    error_tiers = {tier for tier, f in failed if tier and f.severity == ERROR}
    return [f for tier, f in failed if not (tier in error_tiers and f.severity != ERROR)]


def _page_path(context, identifier) -> str | None:
    try:
        urls = context.get_docs_sites_urls(resource_identifier=identifier, site_name=SITE_NAME)
    except Exception:
        log.warning("no Data Docs page for %s", identifier, exc_info=True)
        return None
    for entry in urls:
        url = entry.get("site_url")
        if url:
            parsed = urlparse(url)
            return unquote(parsed.path) if parsed.scheme == "file" else url
    return None


def _suite_fingerprint(suite: Any) -> str:
    configs = [e.configuration.to_json_dict() for e in suite.expectations]
    for c in configs:
        c.pop("id", None)
    return hashlib.sha1(json.dumps(configs, sort_keys=True, default=str).encode()).hexdigest()


def _stored_suite(context, suite: Any):
    from great_expectations.exceptions import DataContextError

    """The suite as stored in the context, rewritten only when its expectations changed.

    (``add_or_update`` compares every expectation pairwise, which costs more than validating.)
    """
    fingerprint = _suite_fingerprint(suite)
    try:
        stored = context.suites.get(suite.name)
    except DataContextError:
        stored = None
    if stored is not None and (stored.meta or {}).get("fingerprint") == fingerprint:
        return stored, False
    suite.meta = {**(suite.meta or {}), "fingerprint": fingerprint}
    return context.suites.add_or_update(suite), True


def _checkpoint(context, suite: Any, changed: bool, result_format: dict[str, Any]):
    from great_expectations import ValidationDefinition
    from great_expectations.checkpoint import Checkpoint
    from great_expectations.exceptions import DataContextError

    name = suite.name
    if not changed:
        try:
            checkpoint = context.checkpoints.get(name)
            if checkpoint.result_format == result_format:
                return checkpoint
        except DataContextError:  # missing: built below
            log.debug("creating checkpoint %s", name)
    definition = context.validation_definitions.add_or_update(
        ValidationDefinition(name=name, data=_batch_definition(context, name), suite=suite)
    )
    return context.checkpoints.add_or_update(
        Checkpoint(
            name=name,
            validation_definitions=[definition],
            actions=[],
            result_format=result_format,
        )
    )


def build_data_docs(context, identifiers: list[Any]) -> None:
    """Render the pages of these validation results (and their suites) and the index, once.

    This is what GX's ``UpdateDataDocsAction`` does, but that action rebuilds the index once per
    validation (~0.6 s each); a stage validates up to nine frames, so it is done once per stage.
    """
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
    )

    suites = {i.expectation_suite_identifier.name for i in identifiers}
    resources = [*identifiers, *(ExpectationSuiteIdentifier(name=s) for s in sorted(suites))]
    context.build_data_docs(site_names=[SITE_NAME], resource_identifiers=resources)


def run_checks(settings: Settings, checks: list[FrameCheck], *, run_id: str) -> list[CheckOutcome]:
    """Validate every frame with its suite (one GX Checkpoint each), then build Data Docs."""
    from great_expectations.core.run_identifier import RunIdentifier

    if not checks:
        return []
    context = get_context(settings)
    runs: list[tuple[FrameCheck, Any, Any, dict[str, Any]]] = []
    for check in checks:
        started = time.perf_counter()
        suite, changed = _stored_suite(context, check.suite)
        result_format: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 20}
        if check.index_columns:
            result_format["unexpected_index_column_names"] = list(check.index_columns)
        checkpoint = _checkpoint(context, suite, changed, result_format)
        run_name = f"{run_id}__{check.batch_id}" if check.batch_id else run_id
        result = checkpoint.run(
            batch_parameters={"dataframe": check.frame},
            expectation_parameters=check.parameters or None,
            run_id=RunIdentifier(run_name=run_name),
        )
        for identifier, validation in result.run_results.items():
            stats = dict(validation.statistics or {})
            stats.update(rows=len(check.frame), seconds=round(time.perf_counter() - started, 3))
            runs.append((check, identifier, validation, stats))
    started = time.perf_counter()
    build_data_docs(context, [identifier for _, identifier, _, _ in runs])
    log.info("Data Docs built in %.2fs", time.perf_counter() - started)
    return [
        CheckOutcome(
            suite=validation.suite_name,
            batch_id=check.batch_id,
            success=bool(validation.success),
            failures=failures_from_validation(validation, batch_id=check.batch_id),
            data_docs_path=_page_path(context, identifier),
            statistics=jsonable(stats),
        )
        for check, identifier, validation, stats in runs
    ]
