"""Application scoring: batch equals one-by-one, the rules, the offline `score` command."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime

import numpy as np
import pytest

from greencredit.models.bp import BpCreditModel
from greencredit.models.fusion import HardFlag
from greencredit.models.lender_config import default_lender_config
from greencredit.models.online_lr import OnlineRiskModel
from greencredit.models.scoring import (
    ApplicationContext,
    ApplicationScorer,
    affordability_risk,
    identity_risk,
    lr_features,
    monthly_instalment_minor,
)
from greencredit.schemas import examples_dir
from greencredit.streams.catalog import SchemaCatalog
from greencredit.streams.jsonform import from_json_form
from greencredit.streams.records import decision_record

SCHEMA = SchemaCatalog().reader("greencredit.v1.LoanApplication").raw
EXAMPLE = json.loads((examples_dir() / "loan_application.json").read_text())


@pytest.fixture(scope="module")
def scorer():
    return ApplicationScorer(BpCreditModel.load())


def _application(**changes):
    event = json.loads(json.dumps(EXAMPLE))
    profile_changes = changes.pop("profile", {})
    event.update(changes)
    event["credit_profile"].update(profile_changes)
    return from_json_form(SCHEMA, event)


def _varied_applications(n, seed=3):
    rng = np.random.default_rng(seed)
    purposes = ["ELECTRIC_VEHICLE", "TRAVEL", "HEAT_PUMP", "ELECTRONICS"]
    checking = ["BELOW_ZERO", "ZERO_TO_200", "AT_LEAST_200", "NO_ACCOUNT"]
    return [
        _application(
            event_id=f"00000000-0000-4000-8000-{i:012d}",
            requested_amount_minor=int(rng.integers(50_000, 5_000_000)),
            term_months=int(rng.choice([6, 12, 24, 36, 48])),
            purpose=purposes[i % 4],
            monthly_income_minor=None if i % 5 == 0 else int(rng.integers(200_000, 3_000_000)),
            profile={"checking_account": checking[i % 4], "age_years": 36},
        )
        for i in range(n)
    ]


def _contexts(n, seed=4):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        out.append(
            ApplicationContext(
                device_risk=None if i % 3 == 0 else float(rng.random()),
                velocity_risk=float(rng.random()),
                flags=frozenset({HardFlag.DEVICE_FARM}) if i % 7 == 0 else frozenset(),
                features={"apps_per_device_24h": float(rng.integers(0, 5))} if i % 2 else {},
            )
        )
    return out


def _trained_lr(seed=5):
    rng = np.random.default_rng(seed)
    model = OnlineRiskModel()
    bp = BpCreditModel.load()
    from greencredit.models.bp_features import applications_to_bp_matrix

    apps = _varied_applications(60, seed=seed)
    matrix = applications_to_bp_matrix(apps)
    for row in matrix:
        x = lr_features(
            row, ApplicationContext(features={"apps_per_device_24h": float(rng.integers(0, 5))})
        )
        model.learn_one(x, bool(rng.random() < float(bp.predict_default_proba(row[None, :])[0])))
    return model


def test_batch_scoring_equals_one_by_one(scorer):
    apps = _varied_applications(40)
    contexts = _contexts(40)
    configs = [default_lender_config(a["tenant_id"]) for a in apps]
    models = [_trained_lr()] * 40
    batch = scorer.score_batch(apps, contexts, configs, models)
    for i in range(40):
        single = scorer.score_batch([apps[i]], [contexts[i]], [configs[i]], [models[i]])[0]
        assert single.result.decision == batch[i].result.decision
        assert single.result.score == pytest.approx(batch[i].result.score, abs=1e-12)
        assert [r.code for r in single.result.reasons] == [r.code for r in batch[i].result.reasons]
        assert single.lr_risk == pytest.approx(batch[i].lr_risk, abs=1e-12)
        assert single.features == batch[i].features


def test_vectorised_lr_equals_river(scorer):
    apps = _varied_applications(20)
    contexts = _contexts(20)
    model = _trained_lr()
    scored = scorer.score_batch(apps, contexts, [default_lender_config("t")] * 20, [model] * 20)
    for item in scored:
        assert item.lr_risk == pytest.approx(model.predict_one(item.features), abs=1e-12)


def test_hard_flags_and_decision_thresholds(scorer):
    app = _application()
    config = default_lender_config("t")
    lr = OnlineRiskModel()
    plain = scorer.score_batch([app], [ApplicationContext()], [config], [lr])[0]
    blacklisted = scorer.score_batch(
        [app], [ApplicationContext(flags=frozenset({HardFlag.FACE_BLACKLIST_HIT}))], [config], [lr]
    )[0]
    assert blacklisted.result.decision == "DECLINE"
    assert blacklisted.result.score == pytest.approx(plain.result.score)
    expected = (
        "APPROVE"
        if plain.result.score < config.approve_below
        else "DECLINE"
        if plain.result.score >= config.decline_at_or_above
        else "REVIEW"
    )
    assert plain.result.decision == expected


def test_green_purpose_lowers_the_score(scorer):
    config = default_lender_config("t")
    lr = OnlineRiskModel()
    green, grey = scorer.score_batch(
        [_application(purpose="HEAT_PUMP"), _application(purpose="TRAVEL")],
        [ApplicationContext()] * 2,
        [config] * 2,
        [lr] * 2,
    )
    assert green.indicators["green_purpose_risk"] == 0.0
    assert grey.indicators["green_purpose_risk"] == 1.0
    assert green.result.score < grey.result.score


def test_identity_rules():
    today = date(2026, 11, 20)
    ok = _application()
    assert identity_risk(ok, today) == (0.0, [])
    bad_check = _application(
        applicant=dict(EXAMPLE["applicant"], id_card_number="110105199003071234")
    )
    assert identity_risk(bad_check, today) == (1.0, ["ID_CHECKSUM_INVALID"])
    older = _application(profile={"age_years": 50})
    assert identity_risk(older, today) == (0.8, ["ID_AGE_MISMATCH"])
    passport = _application(applicant=dict(EXAMPLE["applicant"], id_card_number="E12345678"))
    assert identity_risk(passport, today) == (0.0, [])


def test_affordability():
    assert monthly_instalment_minor(1_200_000, 12, 0.0) == 100_000
    assert monthly_instalment_minor(1_200_000, 12, 0.12) == 106_619  # 1.2M at 1 %/month
    assert affordability_risk(_application(monthly_income_minor=None)) is None
    rich = _application(
        requested_amount_minor=1_200_000, term_months=12, monthly_income_minor=10_000_000
    )
    poor = _application(
        requested_amount_minor=1_200_000, term_months=12, monthly_income_minor=150_000
    )
    assert affordability_risk(rich) == 0.0
    assert affordability_risk(poor) == 1.0


def test_score_command_scores_and_rejects(tmp_path):
    good = dict(EXAMPLE)
    farm = dict(
        EXAMPLE,
        event_id="5f0c2a9e-8d1b-4c3e-9a57-0b6f2d1e4a99",
        _context={"device_risk": 0.9, "flags": ["DEVICE_FARM"]},
    )
    # Schema-valid, but the worker's input checks refuse it: so must the offline command.
    unchecked = dict(EXAMPLE, requested_amount_minor=2**63 - 1)
    source = tmp_path / "apps.jsonl"
    lines = [json.dumps(good), json.dumps(farm), '{"event_id": 1}', json.dumps(unchecked)]
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "decisions.jsonl"
    run = subprocess.run(
        [sys.executable, "-m", "greencredit", "score", "--in", str(source), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1  # lines rejected
    assert json.loads(run.stdout) == {"scored": 2, "rejected": 2, "out": str(out)}
    assert ":3: rejected" in run.stderr
    assert ":4: rejected: requested_amount_minor: above" in run.stderr
    decisions = [json.loads(line) for line in out.read_text().splitlines()]
    assert decisions[1]["decision"] in ("REVIEW", "DECLINE")
    assert "DEVICE_FARM" in [r["code"] for r in decisions[1]["reasons"]]
    text = out.read_text()
    for secret in ("110105199003071239", "13812345678", "zhang.wei", "6222021234567890123"):
        assert secret not in text
    assert datetime.fromisoformat(decisions[0]["occurred_at"]).tzinfo == UTC or decisions[0][
        "occurred_at"
    ].endswith("Z")


def test_a_higher_approval_threshold_turns_review_into_approve(scorer):
    config = default_lender_config("t")
    app = _application()
    lr = OnlineRiskModel()
    [plain] = scorer.score_batch([app], [ApplicationContext()], [config], [lr])
    just_above = plain.result.score + 0.01  # the bonus a green loan gets, here explicit
    [strict] = scorer.score_batch(
        [app], [ApplicationContext()], [config], [lr], approve_below=[plain.result.score - 0.01]
    )
    [lenient] = scorer.score_batch(
        [app], [ApplicationContext()], [config], [lr], approve_below=[just_above]
    )
    assert strict.result.decision != "APPROVE"
    assert lenient.result.decision == "APPROVE"
    assert lenient.result.score == strict.result.score


def test_the_record_carries_the_fusion_inputs_it_was_decided_with(scorer):
    config = default_lender_config("t")
    app = _application()
    lr = OnlineRiskModel()
    [plain] = scorer.score_batch([app], [ApplicationContext()], [config], [lr])
    assert (plain.lr_weight_adjustment, plain.approve_below) == (0.0, config.approve_below)
    [moved] = scorer.score_batch(
        [app], [ApplicationContext()], [config], [lr], [0.08], approve_below=[0.5]
    )
    assert (moved.lr_weight_adjustment, moved.approve_below) == (0.08, 0.5)
    record = decision_record(app, moved, b"key", datetime.now(UTC))
    assert record["schema_version"] == 2
    assert (record["lr_weight_adjustment"], record["approve_below"]) == (0.08, 0.5)


def _score_offline(tmp_path, lines):
    source, out = tmp_path / "apps.jsonl", tmp_path / "decisions.jsonl"
    source.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    run = subprocess.run(
        [sys.executable, "-m", "greencredit", "score", "--in", str(source), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return run, [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


def test_score_command_replays_a_recorded_decision_with_its_fusion_inputs(tmp_path, scorer):
    """Offline replay with the recorded adjustment and threshold gives the online score."""
    app = _application()
    config = default_lender_config(app["tenant_id"])
    context = ApplicationContext(device_risk=0.2, velocity_risk=0.1)
    [online] = scorer.score_batch(
        [app], [context], [config], [OnlineRiskModel()], [0.1], approve_below=[0.45]
    )
    recorded = decision_record(app, online, b"key", datetime.now(UTC))
    replay = {"device_risk": 0.2, "velocity_risk": 0.1}
    line = dict(EXAMPLE, _context=replay)
    replayed = dict(
        EXAMPLE,
        _context=replay | {k: recorded[k] for k in ("lr_weight_adjustment", "approve_below")},
    )
    run, (without, with_inputs) = _score_offline(tmp_path, [line, replayed])
    assert run.returncode == 0, run.stderr
    assert with_inputs["score"] == pytest.approx(recorded["score"], abs=1e-12)
    assert with_inputs["decision"] == recorded["decision"]
    assert (with_inputs["lr_weight_adjustment"], with_inputs["approve_below"]) == (0.1, 0.45)
    # Without them the policy is the lender's plain one: another score.
    assert without["score"] != pytest.approx(recorded["score"], abs=1e-9)


def test_score_command_refuses_a_replayed_threshold_it_cannot_apply(tmp_path):
    line = dict(EXAMPLE, _context={"approve_below": 0.99})  # above the decline threshold
    run, _ = _score_offline(tmp_path, [line])
    assert run.returncode == 2
    assert "cannot score with the given config and _context" in run.stderr
    assert "Traceback" not in run.stderr
