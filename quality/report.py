"""The run log of stage results, and ``quality_report``: where the docs are, how the last run went.

Each validation is stored as ``<quality_dir>/runs/<run>/<stage>.json`` and logged in
``<quality_dir>/runs.jsonl``; the report reads the newest run from there.
"""

from __future__ import annotations

import json
from pathlib import Path

from recops.core.settings import Settings
from recops.quality.paths import data_docs_index, runs_dir, runs_log
from recops.quality.references import safe_name, write_json_atomic
from recops.quality.results import STAGES, QualityResult

REPORT_FAILURE_LINES = 12


def result_path(settings: Settings, run_id: str, stage: str) -> Path:
    return runs_dir(settings) / safe_name(run_id) / f"{stage}.json"


def record_result(settings: Settings, result: QualityResult) -> Path:
    """Store ``result`` (replacing the same run and stage) and log it in ``runs.jsonl``."""
    path = result_path(settings, result.run_id, result.stage)
    write_json_atomic(path, result.model_dump(mode="json"))
    log = runs_log(settings)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as fh:
        fh.write(
            json.dumps({"run_id": result.run_id, "stage": result.stage, "path": str(path)}) + "\n"
        )
    return path


def last_run_id(settings: Settings) -> str | None:
    """The run id of the most recently recorded stage result."""
    log = runs_log(settings)
    if not log.exists():
        return None
    last = None
    with log.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                last = line
    return json.loads(last)["run_id"] if last else None


def load_run(settings: Settings, run_id: str) -> list[QualityResult]:
    """The recorded stage results of ``run_id`` in pipeline order."""
    results = []
    for stage in STAGES:
        path = result_path(settings, run_id, stage)
        if path.exists():
            results.append(QualityResult.model_validate_json(path.read_text(encoding="utf-8")))
    return results


def _alerts_for(settings: Settings, run_id: str) -> list[dict]:
    if not settings.alerts_path.exists():
        return []
    out = []
    with settings.alerts_path.open(encoding="utf-8") as fh:
        for line in fh:
            if f'"{run_id}"' in line:
                alert = json.loads(line)
                if alert.get("run_id") == run_id:
                    out.append(alert)
    return out


def _status(result: QualityResult) -> str:
    if result.errors:
        return "FAILED"
    return "warnings" if result.failures else "passed"


def quality_report(settings: Settings) -> str:
    """Where the Data Docs are and a one-screen summary of the last run."""
    index = data_docs_index(settings)
    lines = [
        "RecOps data quality",
        f"Data Docs: {index}" + ("" if index.exists() else " (not built yet)"),
        f"Alerts:    {settings.alerts_path}",
    ]
    run_id = last_run_id(settings)
    if run_id is None:
        lines.append(f"No validation recorded yet under {settings.quality_dir}.")
        return "\n".join(lines)
    results = load_run(settings, run_id)
    lines += [
        "",
        f"Last run: {run_id}",
        f"{'stage':<14}{'status':<10}{'errors':>7}{'warns':>7}{'checks':>8}  batches",
    ]
    for r in results:
        checks = r.statistics.get("evaluated_expectations", "")
        batches = ", ".join(r.batch_ids) or "-"
        if r.quarantined_batch_ids:
            batches += f" (quarantined: {', '.join(r.quarantined_batch_ids)})"
        counts = f"{len(r.errors):>7}{len(r.warnings):>7}{checks!s:>8}"
        lines.append(f"{r.stage:<14}{_status(r):<10}{counts}  {batches}")
    failures = [f for r in results for f in r.errors + r.warnings]
    if failures:
        lines.append("")
        lines.append("Failed expectations:")
        lines += [f"  {f.line()}" for f in failures[:REPORT_FAILURE_LINES]]
        if len(failures) > REPORT_FAILURE_LINES:
            lines.append(f"  ... {len(failures) - REPORT_FAILURE_LINES} more in the stage results")
    pages = [(r.stage, r.data_docs_path) for r in results if r.data_docs_path]
    if pages:
        lines.append("")
        lines += [f"Docs ({stage}): {page}" for stage, page in pages]
    alerts = _alerts_for(settings, run_id)
    if alerts:
        lines.append("")
        lines.append(f"Alerts sent for this run: {len(alerts)} (last: {alerts[-1]['title']})")
    return "\n".join(lines)
