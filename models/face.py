"""Face checks for onboarding: decode a selfie, find one face, align it, embed it, test liveness.

Pure: no Kafka, no Redis, no network. OpenCV Haar cascades (shipped with opencv) detect faces
and eyes; a small CNN in ONNX (``models/artifacts/face_embedder.onnx``, SHA-256 verified like
the BP model) turns an aligned face into an L2-normalised embedding. Any ONNX embedder with the
input spec below can replace it (see the model card), e.g. one set by ``FACE_MODEL_PATH``.

Every rejection is a :class:`FaceError` whose ``reason`` is a stable code for API responses.
"""

from __future__ import annotations

import json
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, NamedTuple

import cv2
import numpy as np
import onnxruntime

from greencredit.models.bp import ARTIFACTS_DIR
from greencredit.models.pinned import ModelIntegrityError, pinned_onnx_session

__all__ = [
    "FACE_MODEL_PATH",
    "FACE_SIZE",
    "FaceBox",
    "FaceEmbedder",
    "FaceError",
    "FaceTooSmall",
    "FrameObservation",
    "ImageTooLarge",
    "ImageTooSmall",
    "ImageUnreadable",
    "LivenessResult",
    "ModelIntegrityError",
    "MultipleFaces",
    "NoFace",
    "align_face",
    "assess_liveness",
    "cosine_similarity",
    "decode_image",
    "detect_face",
    "find_face",
    "liveness",
    "observe_frame",
    "same_person",
]

FACE_MODEL_PATH = ARTIFACTS_DIR / "face_embedder.onnx"
FACE_SIZE = 64  # side of the aligned grey face the committed embedder reads
MAX_IMAGE_BYTES = 2_000_000
# A 2 MB PNG of a flat colour can declare 30000x30000 pixels; refuse it before decoding.
MAX_IMAGE_PIXELS = 25_000_000
MIN_IMAGE_SIDE = 64
MIN_FACE_SIDE = 48
# Width the upper half of a face is scaled to before the liveness check looks for eyes.
EYE_SEARCH_WIDTH = 240
# Border added around a close-up before searching it again: a share of its shorter side.
CLOSE_UP_BORDER = 0.15
CLOSE_UP_MIN_BORDER = 16
# Faces of 32-47 px are still found so that the caller hears FACE_TOO_SMALL, not NO_FACE.
DETECT_SIDE = 640
# KYC selfies show one large face (>= 96 px): search a 320 px copy for it first (a fifth of
# the time), and the full DETECT_SIDE only when that finds nothing (small, distant faces).
FAST_DETECT_SIDE = 320
# Haar boxes are tight on the brow-to-chin square; the training crops were ~5% wider.
ALIGN_MARGIN = 0.05
MAX_LIVENESS_FRAMES = 120
_INPUT = "face"
_OUTPUT = "embedding"


class FaceError(ValueError):
    """A selfie we cannot use; ``reason`` is the stable code returned to the caller."""

    reason: ClassVar[str] = "FACE_ERROR"


class ImageTooLarge(FaceError):
    """More bytes (or declared pixels) than we are willing to decode."""

    reason = "IMAGE_TOO_LARGE"


class ImageUnreadable(FaceError):
    """Not a PNG/JPEG, or a corrupt one."""

    reason = "IMAGE_UNREADABLE"


class ImageTooSmall(FaceError):
    """Decoded, but too few pixels to hold a usable face."""

    reason = "IMAGE_TOO_SMALL"


class NoFace(FaceError):
    """No frontal face found."""

    reason = "NO_FACE"


class MultipleFaces(FaceError):
    """More than one face of comparable size: we cannot tell whose selfie it is."""

    reason = "MULTIPLE_FACES"


class FaceTooSmall(FaceError):
    """The face is found but too small to embed reliably."""

    reason = "FACE_TOO_SMALL"


class FaceBox(NamedTuple):
    """Axis-aligned face box in pixels."""

    x: int
    y: int
    w: int
    h: int


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG IHDR or JPEG SOF header, None if neither is found."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 <= len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            (length,) = struct.unpack(">H", data[i + 2 : i + 4])
            # SOF0..SOF15 carry the frame size; C4/C8/CC are DHT/JPG/DAC, not frames.
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return width, height
            i += 2 + length
    return None


def decode_image(data: bytes, max_bytes: int = MAX_IMAGE_BYTES) -> np.ndarray:
    """PNG/JPEG bytes to a BGR uint8 ``[h, w, 3]`` array, or a typed :class:`FaceError`.

    Sizes are checked before decoding so that an oversized upload costs no memory.
    """
    if len(data) > max_bytes:
        raise ImageTooLarge(f"{len(data)} bytes > {max_bytes}")
    size = _declared_size(data)
    if size is None:
        raise ImageUnreadable("not a PNG or JPEG image")
    if size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise ImageTooLarge(f"{size[0]}x{size[1]} pixels > {MAX_IMAGE_PIXELS}")
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None:
        raise ImageUnreadable("corrupt image")
    if min(image.shape[:2]) < MIN_IMAGE_SIDE:
        raise ImageTooSmall(f"{image.shape[1]}x{image.shape[0]} < {MIN_IMAGE_SIDE} px")
    return np.asarray(image, dtype=np.uint8)


# One classifier per thread: detectMultiScale is not thread-safe (concurrent calls on one
# classifier from the worker's thread pool failed with an OpenCV assertion in getScaleData).
_per_thread = threading.local()


def _cascade(name: str) -> cv2.CascadeClassifier:
    loaded: dict[str, cv2.CascadeClassifier] = _per_thread.__dict__.setdefault("cascades", {})
    classifier = loaded.get(name)
    if classifier is None:
        # cv2's stubs omit the cv2.data submodule that ships the cascade files.
        folder = Path(cv2.data.haarcascades)  # type: ignore[attr-defined]
        classifier = cv2.CascadeClassifier(str(folder / name))
        if classifier.empty():
            raise RuntimeError(f"OpenCV cascade {name} missing")
        loaded[name] = classifier
    return classifier


def _to_gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _faces(gray: np.ndarray, cascade: str, min_side: int) -> list[FaceBox]:
    found = _cascade(cascade).detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side)
    )
    return [FaceBox(*map(int, box)) for box in found]


def detect_face(gray: np.ndarray) -> FaceBox:
    """The one frontal face in a grey (or BGR) image, or NoFace/MultipleFaces/FaceTooSmall.

    Boxes under half the width of the largest are ignored: they are mostly Haar false
    positives or far-away passers-by, not a second applicant.
    """
    gray = _to_gray(gray)
    boxes = _search(gray, FAST_DETECT_SIDE, min_side=96) or _search(gray, DETECT_SIDE, 32)
    if not boxes:
        raise NoFace("no frontal face found")
    largest = max(boxes, key=lambda b: b.w)
    rivals = [b for b in boxes if b.w >= largest.w / 2]
    if len(rivals) > 1:
        raise MultipleFaces(f"{len(rivals)} faces found")
    if largest.w < MIN_FACE_SIDE:
        raise FaceTooSmall(f"face {largest.w} px < {MIN_FACE_SIDE} px")
    return largest


def find_face(image: np.ndarray) -> tuple[np.ndarray, FaceBox]:
    """The grey image to align from and its one face; close-ups are searched with a border.

    Haar needs some background around a face: a selfie whose face fills the frame is
    otherwise NO_FACE. On NO_FACE the search runs once more on a copy with a replicated
    border (the face embedder was trained on the same fallback).
    """
    gray = _to_gray(image)
    try:
        return gray, detect_face(gray)
    except NoFace:
        pad = max(CLOSE_UP_MIN_BORDER, round(CLOSE_UP_BORDER * min(gray.shape)))
        bordered = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        return bordered, detect_face(bordered)


def _search(gray: np.ndarray, side: int, min_side: int) -> list[FaceBox]:
    # Haar cost grows with the pixel count: a 12 MP photo would take seconds, so search a
    # copy at most `side` wide and map the boxes back.
    factor = min(1.0, side / max(gray.shape))
    small = (
        gray
        if factor == 1.0
        else cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    )
    found = _faces(small, "haarcascade_frontalface_default.xml", max(20, round(min_side * factor)))
    return [FaceBox(*(round(v / factor) for v in box)) for box in found]


def _eye_angle(gray: np.ndarray, box: FaceBox) -> float:
    """Roll angle in degrees from two eyes in the upper half of the face, 0 if unsure.

    Haar eye boxes are noisy, so anything but exactly two plausibly placed eyes means
    "do not rotate": a wrong rotation hurts the embedding more than none.
    """
    upper = gray[box.y : box.y + box.h // 2, box.x : box.x + box.w]
    eyes = _faces(upper, "haarcascade_eye.xml", min_side=max(8, box.w // 10))
    if len(eyes) != 2:
        return 0.0
    (lx, ly), (rx, ry) = sorted((e.x + e.w / 2, e.y + e.h / 2) for e in eyes)
    if rx - lx < 0.25 * box.w:
        return 0.0
    angle = float(np.degrees(np.arctan2(ry - ly, rx - lx)))
    return angle if abs(angle) <= 25.0 else 0.0


def align_face(image: np.ndarray, box: FaceBox, size: int = FACE_SIZE) -> np.ndarray:
    """Grey ``[size, size]`` uint8 face: levelled on the eyes, cropped with margin, equalised.

    Histogram equalisation makes the embedding depend less on exposure and skin tone lighting.
    """
    gray = _to_gray(image)
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    angle = _eye_angle(gray, box)
    if angle:
        rotation = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
        gray = cv2.warpAffine(gray, rotation, gray.shape[::-1], borderMode=cv2.BORDER_REPLICATE)
    half = box.w * (1 + 2 * ALIGN_MARGIN) / 2
    # An affine crop pads with edge pixels when the margin leaves the image.
    scale = size / (2 * half)
    crop = np.array([[scale, 0, size / 2 - cx * scale], [0, scale, size / 2 - cy * scale]])
    face = cv2.warpAffine(
        gray, crop, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )
    return np.asarray(cv2.equalizeHist(face), dtype=np.uint8)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the angle between two embeddings (1 = same direction)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / denominator if denominator else 0.0


def same_person(similarity: float, threshold: float) -> bool:
    """Accept a match when the similarity reaches the model card's threshold."""
    return similarity >= threshold


class FaceEmbedder:
    """L2-normalised face embeddings from a SHA-256-verified ONNX file.

    Input ``face``: float32 ``[n, 1, S, S]``, grey levels scaled to [0, 1] (S from the model,
    64 for the committed one). Output ``embedding``: float32 ``[n, d]``.
    """

    def __init__(
        self, session: onnxruntime.InferenceSession, sha256: str, threshold: float
    ) -> None:
        """Wrap an open session; use :meth:`load`, which verifies the file first."""
        self._session = session
        self._sha256 = sha256
        self.threshold = threshold
        self.size = int(session.get_inputs()[0].shape[-1])

    @classmethod
    def load(cls, path: Path | None = None, expected_sha256: str | None = None) -> FaceEmbedder:
        """Verify and open the embedder (default: the committed artifact and its .sha256)."""
        path = path or FACE_MODEL_PATH
        session, actual = pinned_onnx_session(path, expected_sha256)
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if [i.name for i in inputs] != [_INPUT] or [o.name for o in outputs] != [_OUTPUT]:
            raise ModelIntegrityError(f"{path.name}: expected input 'face', output 'embedding'")
        meta = session.get_modelmeta().custom_metadata_map
        threshold = float(json.loads(meta.get("threshold", "nan")))
        return cls(session, actual, threshold)

    @property
    def version(self) -> str:
        """``face_embedder@<first 12 hex of the file's SHA-256>`` for audit logs."""
        return f"face_embedder@{self._sha256[:12]}"

    def embed(self, aligned_batch: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """``[n, d]`` unit-length embeddings of aligned uint8 ``[n, S, S]`` faces."""
        batch = np.asarray(aligned_batch)
        if batch.ndim == 2:
            batch = batch[None]
        if batch.ndim != 3 or batch.shape[1:] != (self.size, self.size):
            raise ValueError(f"aligned faces: expected shape (n, {self.size}, {self.size})")
        if batch.shape[0] == 0:
            return np.empty((0, 0), dtype=np.float32)
        scale = 255.0 if batch.dtype == np.uint8 else 1.0
        face = (batch.astype(np.float32) / scale)[:, None]
        (raw,) = self._session.run([_OUTPUT], {_INPUT: np.ascontiguousarray(face)})
        raw = np.asarray(raw, dtype=np.float32)
        # Normalised here too, so that a replacement model need not do it in its graph.
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        return raw / np.maximum(norms, 1e-12)

    def embed_image(self, data: bytes) -> np.ndarray:
        """Decode, detect, align and embed one selfie: a ``[d]`` unit vector or a FaceError."""
        gray, box = find_face(decode_image(data))
        return self.embed(align_face(gray, box, self.size))[0]


# --- liveness (seed 7.1.1: "blink of an eye and turning the head") ---------------------------


@dataclass(frozen=True)
class FrameObservation:
    """What one video frame shows: a frontal face (with eyes open or not) or a profile."""

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


def observe_frame(data: bytes) -> FrameObservation:
    """Detect frontal face, eyes inside it and profile (either side) in one encoded frame.

    Unreadable frames count as "nothing seen" instead of failing the whole challenge.
    """
    try:
        gray = _to_gray(decode_image(data))
    except FaceError:
        return FrameObservation(frontal=False, eyes_open=False, profile=False)
    frontal = _faces(gray, "haarcascade_frontalface_default.xml", min_side=MIN_FACE_SIDE)
    if frontal:
        box = max(frontal, key=lambda b: b.w)
        upper = gray[box.y : box.y + box.h // 2, box.x : box.x + box.w]
        # The eye cascade misses most open eyes of faces under ~150 px (on 80 px studio
        # faces 69 of 84 frames read "closed"), which would fake blinks: search the upper
        # face at one fixed width instead.
        factor = EYE_SEARCH_WIDTH / box.w
        upper = cv2.resize(upper, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        eyes = _faces(upper, "haarcascade_eye.xml", min_side=EYE_SEARCH_WIDTH // 10)
        return FrameObservation(frontal=True, eyes_open=bool(eyes), profile=False)
    # The cascade only knows faces turned to one side; the mirror catches the other side.
    profile = bool(
        _faces(gray, "haarcascade_profileface.xml", MIN_FACE_SIDE)
        or _faces(cv2.flip(gray, 1), "haarcascade_profileface.xml", MIN_FACE_SIDE)
    )
    return FrameObservation(frontal=False, eyes_open=False, profile=profile)


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


def liveness(frames: list[bytes]) -> LivenessResult:
    """Blink and head-turn challenge over encoded frames, in capture order.

    This stops a printed photo, not a replayed video or a mask: treat it as one signal.
    """
    if len(frames) > MAX_LIVENESS_FRAMES:
        return LivenessResult(False, False, False, "TOO_MANY_FRAMES")
    return assess_liveness([observe_frame(frame) for frame in frames])
