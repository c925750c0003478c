"""The dbt models pass `sqlfluff lint dbt_project/models` (config: dbt_project/.sqlfluff)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from recops.core.settings import REPO_ROOT

pytestmark = [pytest.mark.slow]


@pytest.mark.timeout(300)
def test_models_pass_sqlfluff_lint() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sqlfluff", "lint", "dbt_project/models"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "All Finished" in proc.stdout + proc.stderr
