"""Who may answer an approval request: the run's approvers, and with separation of duties never the
user who triggered the run (``RECOPS_APPROVAL_SEPARATE_DUTIES``, on by default in production)."""

from __future__ import annotations

import pytest

from recops.core.settings import Settings
from recops.training.approval import PromotionError, airflow_admins, approvers_for


def test_admins_are_read_from_the_simple_auth_manager_setting() -> None:
    assert airflow_admins("admin:admin") == ["admin"]
    assert airflow_admins(" ana:Admin, bo:viewer ,cy:admin,:admin,dee") == ["ana", "cy"]
    assert airflow_admins("") == []


def test_without_separation_the_listed_approvers_or_anyone() -> None:
    assert approvers_for([" ana ", "bo", "ana", ""], triggered_by="ana", separate_duties=False, admins=["cy"]) == [
        "ana", "bo"]
    assert approvers_for([], triggered_by="ana", separate_duties=False, admins=["cy"]) == []


def test_separation_drops_the_trigger_and_falls_back_to_the_admins() -> None:
    assert approvers_for(["ana", "bo"], triggered_by="ana", separate_duties=True, admins=["cy"]) == ["bo"]
    assert approvers_for([], triggered_by="ana", separate_duties=True, admins=["ana", "cy"]) == ["cy"]
    assert approvers_for([], triggered_by=None, separate_duties=True, admins=["ana"]) == ["ana"]


def test_separation_refuses_when_only_the_trigger_could_approve() -> None:
    with pytest.raises(PromotionError, match="'ana' triggered this run and may not approve"):
        approvers_for(["ana"], triggered_by="ana", separate_duties=True, admins=["cy"])
    with pytest.raises(PromotionError, match="no admins besides them"):
        approvers_for([], triggered_by="admin", separate_duties=True, admins=["admin"])


def test_separation_is_on_by_default_only_in_production(tmp_path) -> None:
    assert Settings(home=tmp_path).separate_duties is False
    assert Settings(home=tmp_path, profile="production", user_salt="s" * 16).separate_duties is True
    assert Settings(home=tmp_path, profile="production", user_salt="s" * 16,
                    approval_separate_duties=False).separate_duties is False
    assert Settings(home=tmp_path, approval_separate_duties=True).separate_duties is True
