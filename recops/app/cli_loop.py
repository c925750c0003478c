"""Loop commands of the ``recops`` CLI: simulate shoppers against the API, backfill intervals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from recops.core.settings import get_settings
from recops.core.timeutil import DateParseError, parse_date

console = Console(stderr=True)


def _date(value: str | None) -> str | None:
    try:
        parsed = parse_date(value, name="date")
    except DateParseError as exc:
        raise typer.BadParameter(str(exc)) from None
    return parsed.isoformat() if parsed else None


def simulate_command(
    shop: Annotated[Path, typer.Option(exists=True, file_okay=False, help="Folder `recops generate` wrote.")],
    start: Annotated[str, typer.Option(help="First simulated day (YYYY-MM-DD).", callback=_date)],
    days: Annotated[int, typer.Option(min=1, max=365)] = 1,
    url: Annotated[str, typer.Option(help="The running API.")] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option(help="An admin token (default: the home's generated one).")] = None,
    users: Annotated[int, typer.Option(min=1, help="How many of the shop's users visit each day.")] = 100,
    policy: Annotated[str, typer.Option(help="model, or popularity (ask as anonymous visitors).")] = "model",
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """The synthetic shop's users request recommendations from the running API and click, add to
    cart and buy by their latent preferences, posting feedback with the request ids."""
    from datetime import date

    from recops.app.simulate import simulate
    from recops.serving.auth import embedded_token

    if policy not in ("model", "popularity"):
        raise typer.BadParameter("--policy is model or popularity")
    token = token or embedded_token(get_settings())
    tally = simulate(url, token, shop, start=date.fromisoformat(start), days=days, users=users,
                     policy=policy, seed=seed)
    typer.echo(json.dumps(tally, indent=2))


def backfill_command(
    start: Annotated[str, typer.Option("--from", help="First interval end (YYYY-MM-DD, midnight UTC).", callback=_date)],
    end: Annotated[str, typer.Option("--to", help="Last interval end (YYYY-MM-DD).", callback=_date)],
    every: Annotated[int, typer.Option(min=1, help="Days between interval ends.")] = 1,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run recops_pipeline once per past interval, oldest first; each run sees only the data
    before its interval end (what Airflow's backfill of the schedule does)."""
    from datetime import date

    from recops.app.run import backfill

    try:
        results = backfill(get_settings(), date.fromisoformat(start), date.fromisoformat(end), every_days=every,
                           console=console, verbose=verbose)
    except Exception as exc:  # PipelineFailed and friends: a failed interval stops the backfill
        console.print(f"[red]backfill stopped:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(results, indent=2, default=str))
