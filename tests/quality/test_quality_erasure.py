"""Erasing a customer's traces from GX results, Data Docs and alerts."""

from __future__ import annotations

import json

from recops.core.privacy import pseudonymise
from recops.core.settings import Settings
from recops.quality.erasure import erase_quality_files


def test_quality_results_and_alerts_quoting_the_user_go(tmp_path) -> None:
    settings = Settings(home=tmp_path)
    key = pseudonymise("13085", settings.user_salt)
    results = settings.quality_dir / "gx" / "validations"
    results.mkdir(parents=True)
    (results / "failed.json").write_text(json.dumps({"partial_unexpected_list": [key, "x"]}))
    (results / "passed.json").write_text(json.dumps({"partial_unexpected_list": []}))
    settings.alerts_path.write_text(
        json.dumps({"message": f"dim_users: duplicate user_id e.g. [{key!r}]"}) + "\n"
        + json.dumps({"message": "ml_item_features: trend_ratio all null"}) + "\n"
    )
    assert erase_quality_files(settings, key) == {"quality.files": 1, "alerts.lines": 1}
    assert not (results / "failed.json").exists() and (results / "passed.json").exists()
    assert "trend_ratio" in settings.alerts_path.read_text() and key not in settings.alerts_path.read_text()


