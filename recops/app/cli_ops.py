"""Operations commands of the ``recops`` CLI: online metrics and quarantined batches."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from recops.core.settings import Settings, get_settings
from recops.core.timeutil import DateParseError, parse_date

metrics_app = typer.Typer(help="Online metrics of the served models.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Quarantined batches: list, show, release.", no_args_is_help=True)
console = Console(stderr=True)


def _settings() -> Settings:
    return get_settings()


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _day(value: str | None) -> str | None:
    try:
        parsed = parse_date(value, name="--since")
    except DateParseError as exc:
        raise typer.BadParameter(str(exc)) from None
    return parsed.isoformat() if parsed else None


@metrics_app.command("online")
def metrics_online(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    since: Annotated[str | None, typer.Option(help="First day served (YYYY-MM-DD).", callback=_day)] = None,
    until: Annotated[str | None, typer.Option(help="Last day served (YYYY-MM-DD).", callback=_day)] = None,
    refresh: Annotated[bool, typer.Option(
        "--refresh", help="First load the API's closed logs, gate them and rebuild the online marts.")] = False,
) -> None:
    """Impressions, clicks, CTR, add-to-cart rate, conversion and revenue per model version and
    variant (from the last pipeline run's marts, or fresh with --refresh)."""
    from datetime import date

    import pandas as pd

    from recops.core.marts import online_metrics_daily, online_summary

    settings = _settings()
    if refresh:
        from recops.app.tasks import online_marts
        from recops.core.timeutil import now_utc

        with console.status("loading the API's logs, gating them, rebuilding the online marts"):
            try:
                online_marts(run_id=f"metrics__{now_utc():%Y%m%dT%H%M%S}", settings=settings)
            except Exception as exc:  # a failed gate or dbt run: say what, no traceback
                console.print(f"[red]refresh failed:[/red] {exc}")
                raise typer.Exit(1) from None
    daily = online_metrics_daily(settings)
    first, last = (date.fromisoformat(d) if d else None for d in (since, until))
    versions = online_summary(daily, since=first, until=last)
    if as_json:
        served = pd.to_datetime(daily["served_date"]).dt.date
        shown = daily[(served >= (first or date.min)) & (served <= (last or date.max))]
        days = shown.assign(served_date=shown["served_date"].astype(str)).to_dict("records")
        _print_json({"versions": versions, "daily": days})
        return
    table = Table(title="online metrics (attributed feedback)")
    for col in ("version", "variant", "days", "impressions", "clicks", "CTR", "add-to-cart", "conversion", "rev/1000"):
        table.add_column(col, justify="right")
    for v in versions:
        table.add_row(v["model_version"], v["variant"], str(v["days"]), f"{v['impressions']:,}", f"{v['clicks']:,}",
                      f"{v['ctr']:.4f}", f"{v['add_to_cart_rate']:.4f}", f"{v['conversion']:.4f}",
                      f"{v['revenue_per_1000']:.2f}")
    console.print(table)



@quarantine_app.command("list")
def quarantine_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    all_batches: Annotated[bool, typer.Option("--all", help="Every batch, not only quarantined ones.")] = False,
) -> None:
    """Quarantined batches (newest first): source, rows, gate verdict, reason."""
    from recops.quality.quarantine import list_batches

    rows = list_batches(_settings(), status=None if all_batches else "quarantined")
    if as_json:
        _print_json({"batches": rows})
        return
    table = Table(title="batches" if all_batches else "quarantined batches")
    for col in ("batch", "source", "ingested", "rows in", "status", "gate", "reason"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["batch_id"][:12], r["source"], str(r["ingested_at"])[:19], f"{r['rows_in']:,}",
                      r["status"], str(r["gate_status"] or "-"), str(r["status_reason"] or "")[:80])
    console.print(table)


@quarantine_app.command("show")
def quarantine_show(
    batch_id: Annotated[str, typer.Argument(help="The batch id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One batch: files, counts, why it is quarantined, rejected rows per reason, releases."""
    from recops.quality.quarantine import QuarantineError, show_batch

    try:
        batch = show_batch(_settings(), batch_id)
    except QuarantineError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    if as_json:
        _print_json(batch)
        return
    for key in ("batch_id", "source", "files", "ingested_at", "rows_in", "rows_loaded", "rows_quarantined",
                "status", "gate_status", "gated_run_id", "status_reason"):
        console.print(f"[bold]{key}[/bold]: {batch.get(key)}", highlight=False, soft_wrap=True)
    for row in batch["rejected"]:
        console.print(f"  rejected {row['rows']:,} rows: {row['field']} {row['reason']}", highlight=False)
    for row in batch["releases"]:
        console.print(f"  released {row['released_at']} by {row['released_by']}: {row['reason']}", highlight=False)


@quarantine_app.command("release")
def quarantine_release(
    batch_id: Annotated[str, typer.Argument(help="The batch id.")],
    reason: Annotated[str, typer.Option(help="Why the batch is fine after all (recorded).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Put a quarantined batch back into the marts from the next run on (recorded, audited)."""
    from recops.app.forget import current_operator
    from recops.quality.quarantine import QuarantineError, release_batch

    try:
        released = release_batch(_settings(), batch_id, reason=reason, actor=current_operator(), origin="cli")
    except QuarantineError as exc:
        console.print(f"[red]release refused:[/red] {exc}")
        raise typer.Exit(1) from None
    if as_json:
        _print_json(released)
    else:
        console.print(f"released {batch_id}: {reason}", highlight=False)
