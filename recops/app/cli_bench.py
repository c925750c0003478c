"""Benchmark commands of the ``recops`` CLI: public data sets on their own published protocols."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from recops.core.settings import get_settings

benchmark_app = typer.Typer(help="Public benchmarks on their own protocols.", no_args_is_help=True)
console = Console(stderr=True)


class Stratify(StrEnum):
    item = "item"
    user = "user"


def _settings():
    return get_settings()


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@benchmark_app.command("movielens")
def benchmark_movielens(
    path: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="The ml-100k folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    tune: Annotated[
        bool, typer.Option("--tune", help="First redo the settings search on the train part.")
    ] = False,
    stratify: Annotated[Stratify, typer.Option(help="Split per item (as published) or user.")] = Stratify.item,
    seed: Annotated[int, typer.Option(help="Seed of the 75/25 split.")] = 42,
) -> None:
    """MovieLens 100k on the Microsoft Recommenders protocol: nDCG@10, Precision@10, Recall@10 and
    MAP of the ranker and each retriever, next to the published table."""
    from recops.training.movielens_benchmark import movielens_benchmark

    settings = _settings()
    tuning = None
    if tune:
        from recops.training.movielens_tuning import tune_movielens

        tuning = tune_movielens(settings, path, seed=seed, stratify=stratify.value)
        settings = settings.model_copy(update=tuning["chosen"])
    result = movielens_benchmark(settings, path, seed=seed, stratify=stratify.value)
    if tuning is not None:
        result["tuning"] = tuning
    if as_json:
        _print_json(result)
    else:
        Console().print(_benchmark_table(result))
        if tuning is not None:
            console.print(f"chosen on the train part: {tuning['chosen']}", soft_wrap=True)


def _benchmark_table(result: dict):
    """Our models, then the published ones (their MAP@10 is not published)."""
    from rich.table import Table

    columns = ["ndcg@10", "precision@10", "recall@10", "map", "map@10"]
    protocol = result["protocol"]
    table = Table(
        title=f"MovieLens 100k, Recommenders protocol (75/25 per {protocol['stratify']}, "
        f"seed {protocol['seed']}, k={protocol['k']}), {result['seconds']} s"
    )
    table.add_column("model")
    for name in ("nDCG@10", "Precision@10", "Recall@10", "MAP", "MAP@10"):
        table.add_column(name, justify="right")
    for name, metrics in result["metrics"].items():
        table.add_row(f"ours: {name}", *(f"{metrics[c]:.4f}" for c in columns))
    for name, metrics in result["published"].items():
        table.add_row(f"published: {name}", *(f"{metrics[c]:.4f}" for c in columns[:-1]), "-")
    return table
