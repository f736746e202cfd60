"""Liveness challenge (seed 7.1.1: "blink of an eye and turning the head") on video frames.

Per frame, YuNet says whether there is a face and where its landmarks are. The head is
turned when the nose tip sits far off the middle between the eyes (a yaw cue that needs no
3-D model); eyes are open when OpenCV's eye cascade finds an eye in the upper half of the
face box. A face YuNet misses altogether may be a full profile: the profile cascade decides.
This stops a printed photo, not a replayed video or a mask: treat it as one signal.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .detect import MIN_FACE_SIDE, Detection, FaceDetector
from .image import FaceError, decode_image

__all__ = [
    "MAX_LIVENESS_FRAMES",
    "FrameObservation",
    "LivenessResult",
    "assess_liveness",
    "liveness",
    "observe_frame",
    "yaw_asymmetry",
]

MAX_LIVENESS_FRAMES = 120
# |asymmetry| of the nose between the eyes: up to FRONTAL the face looks at the camera, from
# TURNED on it is turned (on the 400 ORL photos, faces looking at the camera stay within
# about 0.2 and clear head turns reach 0.3-0.45); in between the frame says nothing.
FRONTAL = 0.2
TURNED = 0.3
# Width the upper half of a face is scaled to before looking for eyes: the eye cascade
# misses most open eyes of faces under ~150 px, which would fake blinks.
EYE_SEARCH_WIDTH = 240

_per_thread = threading.local()


def _cascade(name: str) -> cv2.CascadeClassifier:
    # One classifier per thread: detectMultiScale is not thread-safe.
    loaded: dict[str, cv2.CascadeClassifier] = _per_thread.__dict__.setdefault("cascades", {})
    classifier = loaded.get(name)
    if classifier is None:
        folder = Path(cv2.data.haarcascades)  # type: ignore[attr-defined]
        classifier = cv2.CascadeClassifier(str(folder / name))
        if classifier.empty():
            raise RuntimeError(f"OpenCV cascade {name} missing")
        loaded[name] = classifier
    return classifier


@dataclass(frozen=True)
class FrameObservation:
    """What one video frame shows: a frontal face (with eyes open or not) or a turned head."""

    frontal: bool
    eyes_open: bool
    profile: bool


@dataclass(frozen=True)
class LivenessResult:
    """Outcome of the challenge; ``reason`` is LIVE or the first missing gesture."""

    blink: bool
    head_turn: bool
    live: bool
    reason: str


def yaw_asymmetry(face: Detection) -> float:
    """(d_right - d_left) / (d_right + d_left) of the nose's horizontal distance to each eye."""
    right_eye, left_eye, nose = face.landmarks[0], face.landmarks[1], face.landmarks[2]
    to_right = abs(float(nose[0] - right_eye[0]))
    to_left = abs(float(left_eye[0] - nose[0]))
    total = to_right + to_left
    return (to_right - to_left) / total if total > 0 else 0.0


def _eyes_open(gray: np.ndarray, face: Detection) -> bool:
    x, y, w, h = (max(0, round(v)) for v in face.box)
    upper = gray[y : y + h // 2, x : x + w]
    if upper.size == 0:
        return False
    factor = EYE_SEARCH_WIDTH / upper.shape[1]
    upper = cv2.resize(upper, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    eyes = _cascade("haarcascade_eye.xml").detectMultiScale(
        upper, scaleFactor=1.1, minNeighbors=5, minSize=(EYE_SEARCH_WIDTH // 10,) * 2
    )
    return len(eyes) > 0


def observe_frame(data: bytes, detector: FaceDetector) -> FrameObservation:
    """Frontal face, open eyes, turned head in one encoded frame.

    Unreadable frames count as "nothing seen" instead of failing the whole challenge.
    """
    try:
        image = decode_image(data)
    except FaceError:
        return FrameObservation(frontal=False, eyes_open=False, profile=False)
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    faces = [f for f in detector.detect_all(image) if f.width >= MIN_FACE_SIDE]
    if faces:
        asymmetry = abs(yaw_asymmetry(faces[0]))
        if asymmetry >= TURNED:
            return FrameObservation(frontal=False, eyes_open=False, profile=True)
        if asymmetry <= FRONTAL:
            return FrameObservation(True, _eyes_open(gray, faces[0]), profile=False)
        return FrameObservation(frontal=False, eyes_open=False, profile=False)
    profile = _cascade("haarcascade_profileface.xml")
    seen = any(
        len(profile.detectMultiScale(g, 1.1, 5, minSize=(MIN_FACE_SIDE, MIN_FACE_SIDE)))
        for g in (gray, cv2.flip(gray, 1))  # the cascade knows one side; the mirror the other
    )
    return FrameObservation(frontal=False, eyes_open=False, profile=seen)


def _contains_in_order(states: Sequence[str], pattern: Sequence[str]) -> bool:
    """True when ``pattern`` occurs in ``states`` as a subsequence (gaps allowed)."""
    remaining = iter(states)
    return all(any(state == wanted for state in remaining) for wanted in pattern)


def assess_liveness(observations: Sequence[FrameObservation]) -> LivenessResult:
    """Blink = eyes open, closed, open; head turn = frontal, profile, frontal (gaps allowed)."""
    if len(observations) > MAX_LIVENESS_FRAMES:
        return LivenessResult(False, False, False, "TOO_MANY_FRAMES")
    eye_states = [
        "open" if o.eyes_open else "closed" for o in observations if o.frontal and not o.profile
    ]
    pose_states = [
        "frontal" if o.frontal else "profile" for o in observations if o.frontal or o.profile
    ]
    blink = _contains_in_order(eye_states, ("open", "closed", "open"))
    head_turn = _contains_in_order(pose_states, ("frontal", "profile", "frontal"))
    if not observations:
        reason = "NO_FRAMES"
    elif not blink:
        reason = "NO_BLINK"
    elif not head_turn:
        reason = "NO_HEAD_TURN"
    else:
        reason = "LIVE"
    return LivenessResult(blink, head_turn, blink and head_turn, reason)


def liveness(frames: Sequence[bytes], detector: FaceDetector) -> LivenessResult:
    """Blink and head-turn challenge over encoded frames, in capture order."""
    if len(frames) > MAX_LIVENESS_FRAMES:
        return LivenessResult(False, False, False, "TOO_MANY_FRAMES")
    return assess_liveness([observe_frame(frame, detector) for frame in frames])
