"""Liveness: the gesture logic on observation sequences, and real blinks and head turns."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from greencredit.models.face import (
    FACE_MODEL_PATH,
    FaceDetector,
    FrameObservation,
    assess_liveness,
    decode_image,
    liveness,
    observe_frame,
    yaw_asymmetry,
)

FACES_DIR = FACE_MODEL_PATH.parent.parent / "data" / "faces"

OPEN = FrameObservation(frontal=True, eyes_open=True, profile=False)
CLOSED = FrameObservation(frontal=True, eyes_open=False, profile=False)
PROFILE = FrameObservation(frontal=False, eyes_open=False, profile=True)
NOTHING = FrameObservation(frontal=False, eyes_open=False, profile=False)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector.load()


@pytest.fixture(scope="module")
def frames() -> dict[tuple[str, int], bytes]:
    """The vendored ORL held-out photos by (person, photo number): real captures."""
    with np.load(FACES_DIR / "orl_test_faces.npz") as data:
        blob, offsets = data["png"], data["offsets"]
        keys = zip(data["person"].tolist(), data["photo"].tolist(), strict=True)
        return {
            key: blob[a:b].tobytes()
            for key, (a, b) in zip(keys, itertools.pairwise(offsets), strict=True)
        }


def test_blink_and_turn_is_live() -> None:
    result = assess_liveness([OPEN, OPEN, CLOSED, OPEN, NOTHING, PROFILE, PROFILE, OPEN])
    assert result.blink and result.head_turn and result.live
    assert result.reason == "LIVE"


def test_missing_blink_is_not_live() -> None:
    result = assess_liveness([OPEN, OPEN, PROFILE, OPEN, OPEN])
    assert result.head_turn and not result.blink and not result.live
    assert result.reason == "NO_BLINK"


def test_missing_head_turn_is_not_live() -> None:
    result = assess_liveness([OPEN, CLOSED, OPEN, NOTHING, OPEN])
    assert result.blink and not result.head_turn
    assert result.reason == "NO_HEAD_TURN"


def test_order_matters() -> None:
    # Eyes closed first and a profile only at the end: neither gesture is complete.
    result = assess_liveness([CLOSED, OPEN, OPEN, PROFILE])
    assert not result.blink and not result.head_turn
    assert assess_liveness([]).reason == "NO_FRAMES"


def test_too_many_frames_is_refused(detector: FaceDetector) -> None:
    assert liveness([b""] * 500, detector).reason == "TOO_MANY_FRAMES"


def test_a_real_blink_is_seen(detector: FaceDetector, frames: dict) -> None:
    # s8 closes her eyes on photos 3 and 7 and has them open on the other eight: at 80 px
    # faces the eye search must still see open eyes, or every small face would "blink".
    for number in range(1, 11):
        observed = observe_frame(frames[("s8", number)], detector)
        assert observed.frontal and observed.eyes_open == (number not in (3, 7)), number
    blink = liveness([frames[("s8", 1)], frames[("s8", 3)], frames[("s8", 4)]], detector)
    assert blink.blink and not blink.head_turn and blink.reason == "NO_HEAD_TURN"


def test_a_real_head_turn_is_seen(detector: FaceDetector, frames: dict) -> None:
    # s40 looks at the camera on photos 2, 6 and 8 and turns his head on 4, 7 and 10.
    for number in (2, 6, 8):
        assert observe_frame(frames[("s40", number)], detector).frontal, number
    for number in (4, 7, 10):
        face = detector.detect(decode_image(frames[("s40", number)]))
        assert abs(yaw_asymmetry(face)) >= 0.3, number
        assert observe_frame(frames[("s40", number)], detector).profile, number
    turn = liveness([frames[("s40", 2)], frames[("s40", 4)], frames[("s40", 6)]], detector)
    assert turn.head_turn and turn.reason in ("NO_BLINK", "LIVE")


def test_real_blink_and_turn_together_are_live(detector: FaceDetector, frames: dict) -> None:
    # Frames of two sessions of one person are not a video, but each gesture is real.
    sequence = [frames[("s8", 1)], frames[("s8", 3)], frames[("s8", 4)]]
    sequence += [frames[("s40", 4)], frames[("s40", 6)]]
    assert liveness(sequence, detector).live


def test_printed_photo_is_not_live(detector: FaceDetector, frames: dict) -> None:
    # A still photo held in front of the camera: the same frame again and again.
    astronaut = (FACES_DIR / "astronaut.jpg").read_bytes()
    assert not liveness([astronaut] * 4 + [b"garbage"], detector).live
    assert not liveness([frames[("s8", 1)]] * 5, detector).live


def test_unreadable_frames_count_as_nothing_seen(detector: FaceDetector) -> None:
    assert observe_frame(b"not an image", detector) == NOTHING
    assert Path(FACES_DIR / "astronaut.jpg").exists()
