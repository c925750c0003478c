"""Operators the DAG files wire. They live here, not in ``dags/``, so the DAG processor parses
only DAG files; importing this module imports Airflow (the DAG files and tasks only)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator


class ModelApprovalOperator(ApprovalOperator):
    """Airflow's ``ApprovalOperator`` (Required Actions in the UI), asking the run's approvers.

    When the task runs, the run's ``approvers`` param (Airflow user names; empty: anyone with
    access to the DAG) becomes the request's assigned users, and the response timeout comes from
    ``RECOPS_APPROVAL_TIMEOUT_MINUTES``. With ``defaults="Reject"`` a timeout resolves as a reject
    without a responding user, which ``record_rejection`` records as a timeout.

    The response is also pushed as the XCom ``response``: on Reject the operator skips its
    downstream tasks by raising, so its return value never reaches XCom.
    """

    RESPONSE_KEY = "response"

    def execute(self, context: Any) -> Any:
        from recops.settings import get_settings

        approvers = [str(u).strip() for u in (context["params"].get("approvers") or []) if str(u).strip()]
        if approvers:
            self.assigned_users = [{"id": user, "name": user} for user in approvers]
        self.response_timeout = timedelta(minutes=get_settings().approval_timeout_minutes)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        responded_at = event.get("responded_at")
        context["ti"].xcom_push(
            key=self.RESPONSE_KEY,
            value={
                "chosen_options": list(event.get("chosen_options") or []),
                "params_input": dict(event.get("params_input") or {}),
                "responded_by_user": event.get("responded_by_user"),
                "responded_at": responded_at.isoformat() if hasattr(responded_at, "isoformat") else responded_at,
                "timedout": bool(event.get("timedout")),
                "error": event.get("error"),
            },
        )
        return super().execute_complete(context, event)
