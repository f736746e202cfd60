"""The face check's thresholds and its bounded pool (the blacklist search is integration-tested)."""

from __future__ import annotations

import asyncio

import pytest

from greencredit.agents.face_check import FaceChecker
from greencredit.models.face import FaceEmbedder
from greencredit.models.fusion import HardFlag


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder.load()


def test_shipped_thresholds_and_a_lender_override(embedder: FaceEmbedder) -> None:
    checker = FaceChecker(embedder, blacklist=None, max_image_bytes=2_000_000)  # type: ignore[arg-type]
    try:
        match, review = checker.thresholds(None)
        assert (match, review) == (embedder.threshold, embedder.review_threshold)
        strict_match, strict_review = checker.thresholds(0.6)
        assert strict_match == 0.6
        assert strict_review == pytest.approx(0.6 - (match - review))
    finally:
        checker.close()


def test_the_pool_is_bounded_by_the_setting(embedder: FaceEmbedder) -> None:
    checker = FaceChecker(embedder, None, 2_000_000, threads=3)  # type: ignore[arg-type]
    try:
        assert checker._pool._max_workers == 3
    finally:
        checker.close()


def test_without_a_model_selfies_go_to_review_and_others_are_untouched() -> None:
    checker = FaceChecker(None, None, 2_000_000)  # type: ignore[arg-type]
    try:
        outcomes = asyncio.run(checker.check([{"face_image": b"jpeg"}, {"face_image": None}]))
    finally:
        checker.close()
    assert outcomes[1] is None
    assert outcomes[0] is not None and outcomes[0].flags == {HardFlag.FACE_UNVERIFIED}
    assert outcomes[0].codes == ("FACE_MODEL_UNAVAILABLE",)
