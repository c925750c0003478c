"""Alias moves in a real MLflow registry: promote, reject, approve/reject outcomes, rollback, and
the record each move leaves (who, when, from which run, why, from where)."""

from __future__ import annotations

import json

import pytest

from recops.core.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, registry_data) -> Settings:
    home = tmp_path_factory.mktemp("registry-home")
    settings = registry_data.settings_for(home)
    assert registry_data.log_version(settings, registry_data.train_booster(), home) == "1"
    return settings


@pytest.fixture
def reg(base: Settings, request: pytest.FixtureRequest, registry_data) -> Settings:
    """A fresh registered model with three versions (copies of the logged one)."""
    return registry_data.copy_versions(base, "1", f"m-{request.node.name}"[:60], 3)


def aliases(settings: Settings) -> dict[str, str | None]:
    from recops.training.approval import champion_summary

    return champion_summary(settings)


def tags(settings: Settings, version: str) -> dict[str, str]:
    from recops.training.registry import client

    return client(settings).get_model_version(settings.model_name, version).tags


def test_promote_keeps_previous_and_records_every_move(reg: Settings) -> None:
    from recops.training.registry import alias_history, promote, set_alias

    promote(reg, "1", actor="alice", reason="first", origin="recops_pipeline/r1")
    set_alias(reg, "challenger", "2", actor="recops-pipeline", reason="gate passed", origin="recops_pipeline/r2")
    move = promote(reg, "2", actor="bob", reason="approved", origin="recops_pipeline/r2")

    assert aliases(reg) == {"champion": "2", "previous": "1", "challenger": None, "rejected": None}
    assert move.previous_version == "1" and move.actor == "bob" and move.origin == "recops_pipeline/r2"
    t2 = tags(reg, "2")
    assert t2["alias.champion.by"] == "bob"
    assert t2["alias.champion.reason"] == "approved"
    assert t2["alias.champion.origin"] == "recops_pipeline/r2"
    assert t2["alias.champion.from_run"] == move.from_run and move.from_run
    assert t2["alias.champion.at"].endswith("+00:00")
    assert t2["recops.decision"] == "promoted"
    assert tags(reg, "1")["alias.previous.reason"] == "replaced by v2"
    own = [(m["alias"], m["action"]) for m in json.loads(t2["recops.alias_moves"])]
    assert own == [("challenger", "set"), ("champion", "set"), ("challenger", "removed")]
    history = [(m["alias"], m["version"], m["action"], m["actor"]) for m in alias_history(reg)]
    assert history == [
        ("champion", "1", "set", "alice"),
        ("challenger", "2", "set", "recops-pipeline"),
        ("previous", "1", "set", "bob"),
        ("champion", "2", "set", "bob"),
        ("challenger", "2", "removed", "bob"),
    ]


def test_reject_leaves_the_champion(reg: Settings) -> None:
    from recops.training.registry import promote, reject, set_alias

    promote(reg, "1", actor="alice", reason="first")
    set_alias(reg, "challenger", "2", actor="recops-pipeline", reason="gate passed")
    reject(reg, "2", actor="carol", reason="not now")
    assert aliases(reg) == {"champion": "1", "previous": None, "challenger": None, "rejected": "2"}
    t2 = tags(reg, "2")
    assert (t2["recops.decision"], t2["recops.decision_reason"]) == ("rejected", "not now")
    assert t2["alias.rejected.by"] == "carol" and "alias.champion.at" not in t2


def test_rollback_goes_to_previous_and_back(reg: Settings) -> None:
    from recops.training.approval import rollback_champion
    from recops.training.registry import promote

    promote(reg, "1", actor="alice", reason="first")
    promote(reg, "2", actor="alice", reason="second")
    move = rollback_champion(settings=reg, actor="ops", reason="conversion dropped", origin="recops_rollback/m1")
    assert (move["alias"], move["version"], move["previous_version"]) == ("champion", "1", "2")
    assert aliases(reg)["champion"] == "1" and aliases(reg)["previous"] == "2"
    t1 = tags(reg, "1")
    assert t1["alias.champion.reason"] == "rollback from v2: conversion dropped"
    assert (t1["alias.champion.by"], t1["alias.champion.origin"]) == ("ops", "recops_rollback/m1")
    assert tags(reg, "2")["alias.previous.reason"] == "rolled back to v1"
    # a second rollback undoes the first
    rollback_champion(settings=reg, actor="ops")
    assert aliases(reg)["champion"] == "2" and aliases(reg)["previous"] == "1"
    # an explicit version that served before
    rollback_champion(settings=reg, to_version="1", actor="ops")
    assert aliases(reg)["champion"] == "1"


def test_rollback_refusals(reg: Settings) -> None:
    from recops.training.registry import RegistryError, promote, rollback

    with pytest.raises(RegistryError, match="no champion"):
        rollback(reg, actor="ops")
    promote(reg, "1", actor="alice", reason="first")
    with pytest.raises(RegistryError, match="no alias 'previous'"):
        rollback(reg, actor="ops")
    with pytest.raises(RegistryError, match="already the champion"):
        rollback(reg, to_version="1", actor="ops")
    with pytest.raises(RegistryError, match="never served"):
        rollback(reg, to_version="3", actor="ops")
    with pytest.raises(RegistryError, match="no version 99"):
        rollback(reg, to_version="99", actor="ops")
    assert aliases(reg)["champion"] == "1"


def test_approval_outcomes(reg: Settings) -> None:
    from recops.training.approval import PromotionError, approve_candidate, record_rejection
    from recops.training.registry import promote, set_alias

    promote(reg, "1", actor="alice", reason="first")
    decision = {"version": "2", "gate": {"champion_version": "1"}}
    set_alias(reg, "challenger", "2", actor="recops-pipeline", reason="gate passed")
    response = {
        "chosen_options": ["Approve"],
        "params_input": {"reason": "  lifts heavy buyers "},
        "responded_by_user": {"id": "dana", "name": "dana"},
        "responded_at": "2026-04-02T10:00:00+00:00",
    }
    out = approve_candidate(decision, response, settings=reg, origin="recops_pipeline/r2")
    assert out["action"] == "promoted" and out["previous"] == "1"
    assert aliases(reg) == {"champion": "2", "previous": "1", "challenger": None, "rejected": None}
    assert tags(reg, "2")["alias.champion.reason"] == "approved in Airflow by dana: lifts heavy buyers"
    assert tags(reg, "2")["recops.approved_by"] == "dana"
    # approving again is a no-op
    assert approve_candidate(decision, response, settings=reg)["action"] == "already_champion"

    # v3 was judged against v2, but the champion went back to v1 meanwhile: refuse
    set_alias(reg, "challenger", "3", actor="recops-pipeline", reason="gate passed")
    promote(reg, "1", actor="ops", reason="manual")
    stale = {"version": "3", "gate": {"champion_version": "2"}}
    with pytest.raises(PromotionError, match="champion moved from v2 to v1"):
        approve_candidate(stale, response, settings=reg)
    assert aliases(reg)["champion"] == "1"

    rejected = record_rejection(
        stale,
        {"chosen_options": ["Reject"], "params_input": {"reason": None}, "responded_by_user": {"id": "erin", "name": "erin"}},
        settings=reg,
    )
    assert rejected["outcome"] == "rejected_by_approver"
    assert tags(reg, "3")["recops.decision_reason"] == "rejected in Airflow by erin"
    assert aliases(reg)["champion"] == "1" and aliases(reg)["challenger"] is None


def test_approval_timeout_is_recorded(reg: Settings) -> None:
    from recops.training.approval import record_rejection
    from recops.training.registry import promote, set_alias

    promote(reg, "1", actor="alice", reason="first")
    set_alias(reg, "challenger", "2", actor="recops-pipeline", reason="gate passed")
    # what the scheduler's timeout sweep resumes the approval with: the default, nobody responding
    timeout = {"chosen_options": ["Reject"], "params_input": {"reason": None}, "responded_by_user": None, "timedout": True}
    out = record_rejection({"version": "2"}, timeout, settings=reg, origin="recops_pipeline/r2")
    assert out["outcome"] == "timed_out"
    t2 = tags(reg, "2")
    assert t2["recops.decision_reason"] == f"no approval within {reg.approval_timeout_minutes} minutes: timed out, nothing promoted"
    assert t2["alias.rejected.by"] == "airflow (approval timeout)"
    assert aliases(reg)["champion"] == "1"


def test_history_tag_keeps_the_newest_moves_that_fit() -> None:
    from recops.training.registry import REGISTERED_MODEL_TAG_MAX, _fit_history

    moves = [{"alias": "champion", "version": str(i), "reason": "x" * 200} for i in range(100)]
    kept = json.loads(_fit_history(moves))
    assert len(json.dumps(kept)) <= REGISTERED_MODEL_TAG_MAX
    assert kept[-1]["version"] == "99" and 10 < len(kept) < 100

