"""``recops`` ends through :func:`recops.app.fast_exit.exit_now`: the exit code and every line
of output survive the fast exit."""

from __future__ import annotations

import json

from recops.app.fast_exit import exit_code


def test_exit_codes_of_system_exit_values(capsys) -> None:
    assert exit_code(None) == 0 and exit_code(0) == 0 and exit_code(3) == 3
    assert exit_code("no such thing") == 1
    assert "no such thing" in capsys.readouterr().err


def test_the_command_keeps_its_output_and_exit_code(cli, tmp_path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("user_id,item_id,event_type,event_at\nu1,i1,view,2026-01-01T00:00:00Z\n")
    loaded = json.loads(cli(tmp_path / "home", "ingest", "events", str(good)).stdout)
    assert loaded["rows_loaded"] == 1  # the whole JSON document, flushed before the exit
    listed = cli(tmp_path / "home", "quarantine", "list", "--json")
    assert json.loads(listed.stdout) == {"batches": []}
    usage = cli(tmp_path / "home", "ingest", "events", str(tmp_path / "missing.csv"), check=False)
    assert usage.returncode == 2 and "does not exist" in usage.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id\nu1,i1\n")
    failed = cli(tmp_path / "home", "ingest", "events", str(bad), check=False)
    assert failed.returncode == 1 and "ingest failed:" in failed.stderr and str(bad) in " ".join(failed.stderr.split())
