"""The online metrics of served versions as MLflow model-version tags (``online.*``), and the
table an approver reads: how the champion (and the challenger, once it has served traffic) did
with real shoppers."""

from __future__ import annotations

from recops.core.marts import online_metrics_daily, online_summary
from recops.core.registry import client
from recops.core.settings import Settings

TAGGED = ("impressions", "clicks", "add_to_carts", "purchases", "ctr", "add_to_cart_rate", "conversion",
          "revenue_per_1000", "fallback_share", "days", "first_day", "last_day")


def online_by_version(settings: Settings) -> dict[tuple[str, str], dict]:
    """(model version, variant) -> the summary of every day it served."""
    return {(v["model_version"], v["variant"]): v for v in online_summary(online_metrics_daily(settings))}


def tag_online_metrics(settings: Settings) -> dict[str, dict]:
    """Set ``online.<variant>.<metric>`` tags on every registered version that served; returns
    what was tagged."""
    c = client(settings)
    known = {mv.version for mv in c.search_model_versions(f"name = '{settings.model_name}'")}
    tagged: dict[str, dict] = {}
    for (version, variant), summary in online_by_version(settings).items():
        if version not in known:
            continue
        for key in TAGGED:
            c.set_model_version_tag(settings.model_name, version, f"online.{variant}.{key}", str(summary[key]))
        tagged[f"{version}/{variant}"] = summary
    return tagged


def online_table(settings: Settings, versions: dict[str, str | None]) -> list[str]:
    """Markdown lines of the approval request: online figures of the given versions
    (label -> version), or a sentence when none has served traffic yet."""
    figures = online_by_version(settings)
    rows = []
    for label, version in versions.items():
        for (served, variant), s in figures.items():
            if served == version:
                rows.append(
                    f"| {label} v{version} ({variant}) | {s['days']} | {s['impressions']:,} | {s['ctr']:.4f} "
                    f"| {s['add_to_cart_rate']:.4f} | {s['conversion']:.4f} | {s['revenue_per_1000']:.2f} |"
                )
    if not rows:
        return ["**Online:** no served traffic recorded for these versions yet."]
    return [
        "**Online (served traffic, attributed feedback):**", "",
        "| version | days | impressions | CTR | add-to-cart | conversion | revenue / 1000 |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]
