"""Operators the DAG files wire. They live here, not in ``dags/``, so the DAG processor parses
only DAG files; importing this module imports Airflow (the DAG files and tasks only)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator


def stale_request(stored: dict[str, Any], *, subject: str, body: str | None) -> bool:
    """Whether the approval request Airflow keeps for a task differs from the one it should show.

    Airflow 3.3 keeps a cleared task's first request (subject, body, params) and only resets its
    response (apache/airflow#72155): a re-run for another candidate would show the old one."""
    return (stored.get("subject"), stored.get("body")) != (subject, body)


class StaleApprovalRequest(RuntimeError):
    """The approval request on screen is an earlier attempt's; asking with it could promote the
    wrong model."""


class ModelApprovalOperator(ApprovalOperator):
    """Airflow's ``ApprovalOperator`` (Required Actions in the UI), asking the run's approvers.

    When the task runs, the run's ``approvers`` param (Airflow user names; empty: anyone with
    access to the DAG) becomes the request's assigned users (with
    ``RECOPS_APPROVAL_SEPARATE_DUTIES``: never the user who triggered the run, and the Airflow
    admins when none are listed), and the response timeout comes from
    ``RECOPS_APPROVAL_TIMEOUT_MINUTES``. With ``defaults="Reject"`` a timeout resolves as a reject
    without a responding user, which ``record_rejection`` records as a timeout.

    Re-asking after a clear works when the question is the same (same candidate, same champion);
    if the gate's decision changed, the task fails instead of showing Airflow's stale request
    (see :func:`stale_request`): trigger a new run.

    The response is also pushed as the XCom ``response``: on Reject the operator skips its
    downstream tasks by raising, so its return value never reaches XCom.
    """

    RESPONSE_KEY = "response"

    def execute(self, context: Any) -> Any:
        from airflow.configuration import conf
        from airflow.sdk.exceptions import AirflowFailException

        from recops.core.settings import get_settings
        from recops.training.approval import PromotionError, airflow_admins, approvers_for

        settings = get_settings()
        try:
            approvers = approvers_for(
                [str(u) for u in context["params"].get("approvers") or []],
                triggered_by=getattr(context.get("dag_run"), "triggering_user_name", None),
                separate_duties=settings.separate_duties,
                admins=airflow_admins(conf.get("core", "simple_auth_manager_users", fallback="")),
            )
        except PromotionError as exc:
            raise AirflowFailException(str(exc)) from exc
        if approvers:
            self.assigned_users = [{"id": user, "name": user} for user in approvers]
        self.response_timeout = timedelta(minutes=settings.approval_timeout_minutes)
        stored = self._store_request(context["task_instance"].id)
        if stale_request(stored, subject=self.subject, body=self.body):
            raise AirflowFailException(
                f"{StaleApprovalRequest.__name__}: Airflow still holds this task's earlier request "
                f"({stored.get('subject')!r}) and cannot replace it with {self.subject!r} "
                "(apache/airflow#72155); trigger a new run instead of clearing the approval"
            )
        return super().execute(context)

    def _store_request(self, ti_id: Any) -> dict[str, Any]:
        """Write the request (what ``HITLOperator.execute`` also does; a second write is a no-op)
        and return what Airflow stored: the existing request if there was one."""
        from airflow.sdk.api.datamodels._generated import HITLUser
        from airflow.sdk.execution_time.comms import CreateHITLDetailPayload
        from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

        stored = SUPERVISOR_COMMS.send(
            msg=CreateHITLDetailPayload(
                ti_id=ti_id,
                options=self.options,
                subject=self.subject,
                body=self.body,
                defaults=self.defaults,
                params=self.serialized_params,
                multiple=self.multiple,
                assigned_users=[HITLUser(id=u["id"], name=u["name"]) for u in self.assigned_users or []],
            )
        )
        return stored.model_dump() if hasattr(stored, "model_dump") else dict(stored or {})

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
