"""The shipped online-LR starting state: pinned, reproducible, informative."""

from __future__ import annotations

import json

import pytest

from greencredit.models.bp import ModelIntegrityError
from greencredit.models.bp_features import BP_FEATURE_NAMES, load_german_credit
from greencredit.models.lr_bootstrap import BOOTSTRAP_PATH, build_bootstrap_state, load_bootstrap_lr


def test_committed_state_is_what_the_builder_produces():
    state, report = build_bootstrap_state(seed=0)
    assert state == json.loads(BOOTSTRAP_PATH.read_text())
    assert report["n"] == 1000
    assert 0.6 < report["prequential_auc"] < 1.0


def test_loaded_model_separates_good_from_bad():
    model = load_bootstrap_lr()
    features, labels = load_german_credit()
    risks = [
        model.predict_one(dict(zip(BP_FEATURE_NAMES, map(float, row), strict=True)))
        for row in features
    ]
    bad = [r for r, y in zip(risks, labels, strict=True) if y]
    good = [r for r, y in zip(risks, labels, strict=True) if not y]
    assert sum(bad) / len(bad) > sum(good) / len(good) + 0.05


def test_tampered_state_is_refused(tmp_path):
    copy = tmp_path / BOOTSTRAP_PATH.name
    copy.write_bytes(
        BOOTSTRAP_PATH.read_bytes().replace(b'"n_learned": 1000', b'"n_learned": 1001')
    )
    (tmp_path / (BOOTSTRAP_PATH.name + ".sha256")).write_text(
        (BOOTSTRAP_PATH.parent / (BOOTSTRAP_PATH.name + ".sha256")).read_text()
    )
    with pytest.raises(ModelIntegrityError):
        load_bootstrap_lr(copy)
