"""The ``recops`` command line: thin calls of the same functions the Airflow tasks use."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from recops.app.cli_bench import benchmark_app
from recops.app.cli_loop import backfill_command, simulate_command
from recops.app.cli_ops import metrics_app, quarantine_app
from recops.core.constants import Source
from recops.core.settings import Settings, get_settings
from recops.core.timeutil import DateParseError, parse_date

app = typer.Typer(help="RecOps: Airflow-orchestrated recommendation MLOps.", no_args_is_help=True)
ingest_app = typer.Typer(help="Load raw files into the warehouse (batch-tracked, quarantined).", no_args_is_help=True)
quality_app = typer.Typer(help="Data-quality reports.", no_args_is_help=True)
airflow_app = typer.Typer(help="Run Airflow on this RECOPS_HOME.", no_args_is_help=True)
data_app = typer.Typer(
    help="The public data sets in RECOPS_DATA_DIR: check their SHA-256, fetch them from their sources.",
    no_args_is_help=True,
)
app.add_typer(ingest_app, name="ingest")
app.add_typer(quality_app, name="quality")
app.add_typer(airflow_app, name="airflow")
app.add_typer(data_app, name="data")
app.add_typer(metrics_app, name="metrics")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(benchmark_app, name="benchmark")
app.command("simulate")(simulate_command)
app.command("backfill")(backfill_command)
console = Console(stderr=True)


class Fmt(StrEnum):
    parquet = "parquet"
    csv = "csv"


def _settings() -> Settings:
    return get_settings()


def _cutoff(value: str | None) -> str | None:
    """Parse ``--cutoff`` at the edge: a date or nothing."""
    try:
        parsed = parse_date(value, name="--cutoff")
    except DateParseError as exc:
        raise typer.BadParameter(str(exc)) from None
    return parsed.isoformat() if parsed else None


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _print_ingest(load: Callable[[], Any]) -> None:
    """Run one loader and print its summary; a file that cannot be loaded (unreadable, or the
    warehouse write failed and was rolled back) is one clear line and exit code 1, no traceback."""
    from recops.ingestion import IngestError

    try:
        summary = load()
    except IngestError as exc:
        console.print(f"[red]ingest failed:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    _print_json(summary if isinstance(summary, dict) else summary.model_dump())


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Output folder.")],
    users: Annotated[int, typer.Option(min=1)] = 1000,
    items: Annotated[int, typer.Option(min=1)] = 500,
    days: Annotated[int, typer.Option(min=1)] = 90,
    seed: Annotated[int, typer.Option()] = 42,
    format: Annotated[Fmt, typer.Option("--format")] = Fmt.parquet,
) -> None:
    """Generate a synthetic shop (catalogue + event log) from a latent-preference model."""
    from recops.ingestion.shop_files import write_shop

    _print_json(write_shop(out, users=users, items=items, days=days, seed=seed, fmt=format.value))


@ingest_app.command("events")
def ingest_events(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    catalog: Annotated[Path | None, typer.Option(exists=True, dir_okay=False)] = None,
) -> None:
    """Generic event log (the synthetic shop's format), CSV or Parquet."""
    from recops.ingestion import ingest_events as run

    _print_ingest(lambda: run(_settings(), path, catalog))


@ingest_app.command("online-retail")
def ingest_online_retail(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """UCI Online Retail (original or II layout) from .csv, .xlsx or .parquet."""
    from recops.ingestion import ingest_online_retail as run

    _print_ingest(lambda: run(_settings(), path))


@ingest_app.command("movielens")
def ingest_movielens(path: Annotated[Path, typer.Argument(exists=True, file_okay=False)]) -> None:
    """MovieLens 100k folder (u.data, u.item)."""
    from recops.ingestion import ingest_movielens as run

    _print_ingest(lambda: run(_settings(), path))


@ingest_app.command("feedback")
def ingest_feedback(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Feedback events (JSON lines) recorded by the API."""
    from recops.ingestion import ingest_feedback as run

    _print_ingest(lambda: run(_settings(), path))


@ingest_app.command("inbox")
def ingest_inbox() -> None:
    """Files waiting in the inbox (<inbox>/<source>/) and the API's closed logs (what the
    recops_ingest DAG does on its schedule)."""
    from recops.ingestion.inbox import ingest_inbox as run

    _print_ingest(lambda: run(_settings()))


@app.command()
def run(
    cutoff: Annotated[
        str | None, typer.Option(help="Evaluation split date YYYY-MM-DD.", callback=_cutoff)
    ] = None,
    source: Annotated[Source, typer.Option(help="Format of --data.")] = Source.none,
    data: Annotated[Path | None, typer.Option(help="File to ingest first.")] = None,
    catalog: Annotated[Path | None, typer.Option(help="Catalogue for --source events.")] = None,
    auto_promote: Annotated[bool, typer.Option(help="Promote without a human approval.")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also show the tool logs.")] = False,
) -> None:
    """Run the whole pipeline DAG (Airflow ``dag.test()`` in a child process); one line per
    stage, tool logs in $RECOPS_HOME/logs; exits non-zero on failure."""
    from recops.app.run import RunRequest, run_pipeline

    if data is not None and source is Source.none:
        raise typer.BadParameter("--data needs --source (events, online_retail, movielens, feedback)")
    request = RunRequest(
        cutoff=cutoff,
        source=source.value,
        data_path=data.resolve() if data else None,
        catalog_path=catalog.resolve() if catalog else None,
        auto_promote=auto_promote,
    )
    try:
        result = run_pipeline(_settings(), request, console=console, verbose=verbose)
    except Exception as exc:  # PipelineFailed and friends: a failed run exits non-zero
        console.print(f"[red]pipeline failed:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"run {result['state']}; tool logs: {result['log']}", highlight=False, soft_wrap=True)
    _print_json(result)


@app.command()
def evaluate(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    version: Annotated[str | None, typer.Option(help="Model version (default: champion).")] = None,
) -> None:
    """Protocol v1 metrics of the ranker and every retriever on the same users."""
    from recops.training.runs import evaluation_report, format_evaluation

    settings = _settings()
    report = evaluation_report(settings, version=version)
    if as_json:
        _print_json(report)
    else:
        console.print(format_evaluation(report, settings.k))


@app.command()
def tune(
    cutoff: Annotated[
        str | None,
        typer.Option(help="The evaluation cutoff YYYY-MM-DD the settings are for (default: the pipeline's).", callback=_cutoff),
    ] = None,
    features: Annotated[bool, typer.Option(help="Use the Feast store's features (a pipeline run made them).")] = True,
    mlflow: Annotated[bool, typer.Option(help="Log every trial to MLflow.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Search retriever and ranker settings on closed folds before the cutoff (none of their test
    windows reaches it); write them where the pipeline reads them, and print them."""
    from datetime import date

    from rich.status import Status

    from recops.training.runs import tune_run
    from recops.training.tuning import TuningError

    settings = _settings()
    try:
        with Status("tuning on closed folds", console=console) as status:
            result = tune_run(
                settings,
                cutoff=date.fromisoformat(cutoff) if cutoff else None,
                use_features=features,
                log_trials=mlflow,
                progress=lambda text: (console.print(f"  {text}", highlight=False), status.update(text)),
            )
    except TuningError as exc:
        console.print(f"[red]tune failed:[/red] {exc}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        _print_json(result)
        return
    console.print(
        f"folds {result['folds']}; {result['metric']} {result['score']} in {result['seconds']} s; written to {result['path']}",
        highlight=False,
        soft_wrap=True,
    )
    for name, value in result["settings"].items():
        typer.echo(f"RECOPS_{name.upper()}={value}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default RECOPS_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default RECOPS_API_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=64, help="Worker processes (default RECOPS_API_WORKERS).")] = None,
) -> None:
    """Start the recommendation API (FastAPI on uvicorn workers, each loading the champion once)."""
    from recops.app.serve import serve_api

    serve_api(_settings(), host=host, port=port, workers=workers, console=console)


@app.command()
def publish(
    version: Annotated[str | None, typer.Option(help="Version to publish (default: every serving alias).")] = None,
) -> None:
    """Publish a version's candidates and serving data to the candidate store (the pipeline's
    publish_online step does this after every promotion decision)."""
    from recops.core.marts import data_end
    from recops.training.publish import publish_serving, publish_version

    settings = _settings()
    if version:
        _print_json(publish_version(settings, version))
    else:
        _print_json(publish_serving(settings, interval_end=data_end(settings)))


@app.command()
def rollback(
    to: Annotated[str | None, typer.Option("--to", help="Version to restore (default: alias 'previous').")] = None,
    reason: Annotated[str | None, typer.Option(help="Why; recorded on the model version.")] = None,
) -> None:
    """Move the ``champion`` alias back (by default to ``previous``); recorded in MLflow."""
    from recops.training.approval import rollback_champion
    from recops.training.publish import ensure_published
    from recops.training.registry import RegistryError

    settings = _settings()
    try:
        move = rollback_champion(settings=settings, to_version=to, reason=reason)
        _print_json({**move, "published": ensure_published(settings, move["version"])})
    except RegistryError as exc:
        console.print(f"[red]rollback refused:[/red] {exc}")
        raise typer.Exit(1) from None


@app.command()
def forget(
    user_id: Annotated[str, typer.Argument(help="The shop's customer id.")],
    requested_by: Annotated[
        str | None, typer.Option(help="Who asks (the operator or ticket, never the customer); default: OS user.")
    ] = None,
) -> None:
    """Erase one customer everywhere (raw, quarantine, marts, Feast, model bundles) and audit it."""
    from recops.app.forget import forget_user

    _print_json(forget_user(_settings(), user_id, requested_by=requested_by))


@quality_app.command("report")
def quality_report() -> None:
    """Where the Data Docs are and a summary of the last validation run."""
    from recops.quality.report import quality_report as report

    typer.echo(report(_settings()))


@airflow_app.command("up")
def airflow_up() -> None:
    """Start Airflow (api-server, scheduler, dag-processor, triggerer) until Ctrl-C."""
    from recops.app.airflow_services import airflow_up as up

    up(_settings())


def _data_summary(verified: int, total: int, data_dir: Path) -> None:
    """The last line of ``recops data verify|fetch``: how many files match the manifest, where."""
    from rich.markup import escape

    mark = "[green]✓[/green]" if verified == total else "[red]✗[/red]"
    console.print(f"{mark} {verified} of {total} files verified in {escape(str(data_dir))}", highlight=False)


DataSetNames = Annotated[
    list[str] | None, typer.Argument(help="Data set names (default: all of them).", show_default=False)
]


@data_app.command("verify")
def data_verify(
    names: DataSetNames = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check every file's size and SHA-256 against the manifest; exit 1 on any problem."""
    from dataclasses import asdict

    from rich.markup import escape

    from recops.app.datasets import UnknownDataSet, select, verify

    data_dir = _settings().data_dir
    try:
        files = sum(len(ds.files) for ds in select(names))
        problems = verify(data_dir, names)
    except UnknownDataSet as exc:
        raise typer.BadParameter(str(exc)) from None
    if as_json:
        problem_rows = [asdict(p) for p in problems]
        _print_json({"data_dir": str(data_dir), "ok": not problems, "files": files, "problems": problem_rows})
    else:
        for problem in problems:
            console.print(f"[red]✗[/red] {escape(problem.message)}", highlight=False, soft_wrap=True)
        _data_summary(files - len(problems), files, data_dir)
    if problems:
        raise typer.Exit(1)


@data_app.command("fetch")
def data_fetch(names: DataSetNames = None) -> None:
    """Download missing or damaged files from their sources; keep only bytes whose SHA-256 matches."""
    from rich.markup import escape

    from recops.app.datasets import UnknownDataSet, fetch

    data_dir = _settings().data_dir
    try:
        results = fetch(data_dir, names, console=console)
    except UnknownDataSet as exc:
        raise typer.BadParameter(str(exc)) from None
    marks = {"present": "[dim]=[/dim]", "fetched": "[green]✓[/green]", "failed": "[red]✗[/red]"}
    for r in results:
        line = f"{r.path}: {r.status}" + (f" from {r.source}" if r.source else "")
        line += f" ({r.detail})" if r.detail else ""
        console.print(f"{marks[r.status]} {escape(line)}", highlight=False, soft_wrap=True)
    failed = sum(r.status == "failed" for r in results)
    _data_summary(len(results) - failed, len(results), data_dir)
    if failed:
        raise typer.Exit(1)


@app.command()
def demo(
    users: Annotated[int, typer.Option(min=10)] = 600,
    items: Annotated[int, typer.Option(min=10)] = 300,
    days: Annotated[int, typer.Option(min=30)] = 120,
) -> None:
    """Generate a small shop, run the whole pipeline, serve it briefly and show recommendations."""
    from recops.app.demo import run_demo

    run_demo(_settings(), users=users, items=items, days=days)


def main() -> None:
    """The ``recops`` command: the Typer app, then a fast exit (:mod:`recops.app.fast_exit`)."""
    from recops.app.fast_exit import exit_code, exit_now

    try:
        app()
        code = 0
    except SystemExit as exc:
        code = exit_code(exc.code)
    exit_now(code)


if __name__ == "__main__":
    main()
