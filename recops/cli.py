"""The ``recops`` command line: thin calls of the same functions the Airflow tasks use."""

from __future__ import annotations

import json
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="RecOps: Airflow-orchestrated recommendation MLOps.", no_args_is_help=True)
ingest_app = typer.Typer(help="Load raw files into the warehouse (batch-tracked, quarantined).", no_args_is_help=True)
quality_app = typer.Typer(help="Data-quality reports.", no_args_is_help=True)
airflow_app = typer.Typer(help="Run Airflow on this RECOPS_HOME.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(quality_app, name="quality")
app.add_typer(airflow_app, name="airflow")
console = Console(stderr=True)


class Fmt(StrEnum):
    parquet = "parquet"
    csv = "csv"


class Source(StrEnum):
    none = "none"
    events = "events"
    online_retail = "online_retail"
    movielens = "movielens"
    feedback = "feedback"


def _settings():
    from recops.settings import get_settings

    return get_settings()


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


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
    from recops.ingestion.synthetic import write_shop

    _print_json(write_shop(out, users=users, items=items, days=days, seed=seed, fmt=format.value))


@ingest_app.command("events")
def ingest_events(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    catalog: Annotated[Path | None, typer.Option(exists=True, dir_okay=False)] = None,
) -> None:
    """Generic event log (the synthetic shop's format), CSV or Parquet."""
    from recops.ingestion import ingest_events as run

    _print_json(run(_settings(), path, catalog).model_dump())


@ingest_app.command("online-retail")
def ingest_online_retail(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """UCI Online Retail (original or II layout) from .csv, .xlsx or .parquet."""
    from recops.ingestion import ingest_online_retail as run

    _print_json(run(_settings(), path).model_dump())


@ingest_app.command("movielens")
def ingest_movielens(path: Annotated[Path, typer.Argument(exists=True, file_okay=False)]) -> None:
    """MovieLens 100k folder (u.data, u.item)."""
    from recops.ingestion import ingest_movielens as run

    _print_json(run(_settings(), path).model_dump())


@ingest_app.command("feedback")
def ingest_feedback(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Feedback events (JSON lines) recorded by the API."""
    from recops.ingestion import ingest_feedback as run

    _print_json(run(_settings(), path).model_dump())


@app.command()
def run(
    cutoff: Annotated[str | None, typer.Option(help="Evaluation split date YYYY-MM-DD.")] = None,
    source: Annotated[Source, typer.Option(help="Format of --data.")] = Source.none,
    data: Annotated[Path | None, typer.Option(help="File to ingest first.")] = None,
    catalog: Annotated[Path | None, typer.Option(help="Catalogue for --source events.")] = None,
    auto_promote: Annotated[bool, typer.Option(help="Promote without a human approval.")] = True,
) -> None:
    """Run the whole pipeline DAG in-process (Airflow ``dag.test()``); exits non-zero on failure."""
    from recops.pipeline import run_pipeline

    if cutoff is not None:
        try:
            date.fromisoformat(cutoff)
        except ValueError:
            raise typer.BadParameter(f"--cutoff {cutoff!r} is not a date (YYYY-MM-DD)") from None
    if data is not None and source is Source.none:
        raise typer.BadParameter("--data needs --source (events, online_retail, movielens, feedback)")
    try:
        result = run_pipeline(
            _settings(),
            cutoff=cutoff,
            source=source.value,
            data_path=str(data.resolve()) if data else None,
            catalog_path=str(catalog.resolve()) if catalog else None,
            auto_promote=auto_promote,
        )
    except Exception as exc:  # PipelineFailed and friends: a failed run exits non-zero
        console.print(f"[red]pipeline failed:[/red] {exc}")
        raise typer.Exit(1) from None
    _print_json(result)


@app.command()
def evaluate(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    version: Annotated[str | None, typer.Option(help="Model version (default: champion).")] = None,
) -> None:
    """Protocol v1 metrics of the ranker and every retriever on the same users."""
    from recops.pipeline import evaluation_report, format_evaluation

    report = evaluation_report(_settings(), version=version)
    if as_json:
        _print_json(report)
    else:
        console.print(format_evaluation(report))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Start the recommendation API (FastAPI + uvicorn)."""
    import uvicorn

    from recops.serving.main import create_app

    s = _settings()
    uvicorn.run(create_app(s), host=host or s.api_host, port=port or s.api_port)


@app.command()
def rollback(
    to: Annotated[str | None, typer.Option("--to", help="Version to restore (default: alias 'previous').")] = None,
    reason: Annotated[str | None, typer.Option(help="Why; recorded on the model version.")] = None,
) -> None:
    """Move the ``champion`` alias back (by default to ``previous``); recorded in MLflow."""
    from recops.promotion import rollback_stage
    from recops.training.registry import RegistryError

    try:
        _print_json(rollback_stage(settings=_settings(), to_version=to, reason=reason))
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
    from recops.privacy_ops import forget_user

    _print_json(forget_user(_settings(), user_id, requested_by=requested_by))


@quality_app.command("report")
def quality_report() -> None:
    """Where the Data Docs are and a summary of the last validation run."""
    from recops.quality.report import quality_report as report

    typer.echo(report(_settings()))


@airflow_app.command("up")
def airflow_up() -> None:
    """Start Airflow (api-server, scheduler, dag-processor, triggerer) until Ctrl-C."""
    from recops.airflow_services import airflow_up as up

    up(_settings())


@app.command()
def demo(
    users: Annotated[int, typer.Option(min=10)] = 600,
    items: Annotated[int, typer.Option(min=10)] = 300,
    days: Annotated[int, typer.Option(min=30)] = 120,
) -> None:
    """Generate a small shop, run the whole pipeline, serve it briefly and show recommendations."""
    from recops.demo import run_demo

    run_demo(_settings(), users=users, items=items, days=days)


if __name__ == "__main__":
    app()
