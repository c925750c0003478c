"""Hermetic unit tests of recops.core.dbt (no dbt run)."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest

from recops.core.dbt import DbtBuildError, DbtFailure, DbtResult, check_vars, dbt_args
from recops.core.settings import Settings


def _value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


@pytest.mark.parametrize(
    ("profile", "target"), [("embedded", "duckdb"), ("production", "postgres")]
)
def test_dbt_args_use_the_profile_target_and_home(tmp_path, profile, target) -> None:
    settings = Settings(home=tmp_path, profile=profile)
    args = dbt_args(settings, "build", {"cutoff": "2024-03-01"}, "marts.ml")
    assert args[0] == "build"
    assert _value(args, "--target") == target
    assert _value(args, "--project-dir") == str(settings.repo_root / "dbt_project")
    assert _value(args, "--profiles-dir") == str(tmp_path / "dbt")  # rendered from the settings
    assert _value(args, "--target-path") == str(tmp_path / "dbt" / "target")
    assert _value(args, "--log-path") == str(tmp_path / "dbt" / "logs")
    assert json.loads(_value(args, "--vars")) == {"cutoff": "2024-03-01"}
    assert _value(args, "--select") == "marts.ml"
    assert "--quiet" in args  # tool logs go to the file, not over the user's terminal


@pytest.mark.parametrize("profile", ["embedded", "production"])
def test_the_profile_is_rendered_from_the_settings(tmp_path, profile) -> None:
    import stat

    import yaml

    from recops.core.dbt import write_profile

    settings = Settings(
        home=tmp_path, profile=profile, postgres_password="s3cret pw", postgres_db="shop",
        duckdb_memory_limit="3GB",
    )
    folder = write_profile(settings)
    path = folder / "profiles.yml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # logs and run results carry the vars
    output = yaml.safe_load(path.read_text())["recops"]["outputs"][settings.dbt_target]
    if profile == "embedded":
        assert output == {
            "type": "duckdb", "path": str(settings.warehouse_path), "schema": "main", "threads": 2,
            "settings": {"memory_limit": "3GB"},  # beyond it DuckDB spills to disk
        }
    else:
        assert (output["dbname"], output["password"], output["schema"]) == ("shop", "s3cret pw", "public")
        assert output["host"] == settings.postgres_host and output["port"] == settings.postgres_port


def test_dbt_args_of_two_homes_never_share_state(tmp_path) -> None:
    a = dbt_args(Settings(home=tmp_path / "a"))
    b = dbt_args(Settings(home=tmp_path / "b"))
    assert _value(a, "--target-path") != _value(b, "--target-path")
    assert "--vars" not in a and "--select" not in a


def test_check_vars() -> None:
    assert check_vars(None) == {}
    assert check_vars({"cutoff": date(2024, 3, 1), "label_windows": 3}) == {
        "cutoff": "2024-03-01",
        "label_windows": 3,
    }
    assert check_vars({"cutoff": None}) == {"cutoff": None}
    for bad in ("2024-3-1x", "yesterday", datetime(2024, 3, 1), 20240301):
        with pytest.raises(ValueError, match="cutoff"):
            check_vars({"cutoff": bad})
    for name in ("feature_snapshot_days", "label_window_days", "label_windows"):
        for bad in (0, -1, "7", 1.5, True):
            with pytest.raises(ValueError, match=name):
                check_vars({name: bad})


def test_dbt_build_error_lists_the_failed_nodes() -> None:
    result = DbtResult(
        command="build",
        success=False,
        status_counts={"success": 3, "fail": 1, "error": 1},
        failures=[
            DbtFailure(node="test.recops.unique_dim_items_item_id", status="fail", message="Got 2"),
            DbtFailure(node="model.recops.dim_users", status="error", message="boom"),
        ],
        elapsed=1.0,
        target="duckdb",
    )
    text = str(DbtBuildError(result))
    assert "test.recops.unique_dim_items_item_id [fail]: Got 2" in text
    assert "model.recops.dim_users [error]: boom" in text


def test_duckdb_memory_limit_bounds_the_warehouse_connection(tmp_path) -> None:
    from pydantic import ValidationError

    from recops.core.warehouse import Warehouse

    with Warehouse(Settings(home=tmp_path, duckdb_memory_limit="3GB")) as wh:
        assert wh.scalar("select current_setting('memory_limit')") == "2.7 GiB"  # 3e9 bytes
    with Warehouse(Settings(home=tmp_path, duckdb_memory_limit="512MiB"), read_only=True) as wh:
        assert wh.scalar("select current_setting('memory_limit')") == "512.0 MiB"
    with pytest.raises(ValidationError, match="duckdb_memory_limit"):
        Settings(home=tmp_path, duckdb_memory_limit="3GB'; drop table x; --")
