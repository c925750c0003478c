"""``recops run``'s in-process Execution API (``dag.test()``) serves the Task SDK's own API version
with the routes Airflow's full app serves for it, and nothing for older workers.

Each side is built in a child process (the trimming changes Airflow's module state there, as it
does in ``recops.app.dag_runner``) with the home's Airflow environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from recops.app.airflow_runtime import airflow_env
from recops.core.settings import Settings

PROBE = """
import json, sys
import httpx
from recops.app.dag_runner import newest_api_version_only
trimmed = newest_api_version_only() if sys.argv[1] == "trimmed" else None
from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI
from airflow.sdk.api.datamodels._generated import API_VERSION
api = InProcessExecutionAPI()
client = httpx.Client(transport=api.transport, base_url="http://in-process.invalid")
status = {v: client.get("/health", headers={"Airflow-API-Version": v}).status_code for v in (API_VERSION, "2025-04-11")}
routes = sorted(f"{sorted(r.methods)} {r.path}" for r in api.app.router.versioned_routers[API_VERSION].routes
                if hasattr(r, "methods"))
print(json.dumps({"trimmed": trimmed, "version": API_VERSION, "status": status, "routes": routes,
                  "versions": sorted(api.app.router.versioned_routers)}))
"""


def _probe(tmp_path, kind: str) -> dict:
    settings = Settings(home=tmp_path / "home")
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", PROBE, kind], env={**os.environ, **airflow_env(settings)},
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_in_process_api_serves_the_sdks_version_as_airflow_does(tmp_path) -> None:
    full, trimmed = _probe(tmp_path, "full"), _probe(tmp_path, "trimmed")
    assert trimmed["trimmed"] is True and trimmed["version"] == full["version"]
    # Airflow's app: every version since 2025-04, the old ones answered too
    assert len(full["versions"]) > 5 and full["status"] == {full["version"]: 200, "2025-04-11": 200}
    # ours: the SDK's version only, with the very routes Airflow serves for it
    assert trimmed["versions"] == [trimmed["version"]]
    assert trimmed["status"] == {trimmed["version"]: 200, "2025-04-11": 404}
    assert trimmed["routes"] == full["routes"] and len(trimmed["routes"]) > 30
