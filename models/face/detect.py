"""Finding the one face of a selfie with YuNet (OpenCV Zoo, MIT), run by ``cv2.FaceDetectorYN``.

The detector file is read once, checked against its SHA-256 and handed to OpenCV as bytes,
so the checked bytes are the ones that run. YuNet gives a box, five landmarks (eyes, nose
tip, mouth corners: what the alignment needs) and a score.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from greencredit.models.bp import ARTIFACTS_DIR
from greencredit.models.pinned import read_pinned

from .image import FaceTooSmall, MultipleFaces, NoFace

__all__ = [
    "DETECTOR_PATH",
    "DETECT_SIDE",
    "MIN_FACE_SIDE",
    "Detection",
    "FaceDetector",
]

DETECTOR_PATH = ARTIFACTS_DIR / "face_detector_yunet.onnx"
# YuNet's cost grows with the pixel count; selfies show one large face, so search a copy at
# most this many pixels on its longer side (a 640x480 photo is searched at 480x360) and map
# the result back. Faces down to ~12 px are still found there, so FACE_TOO_SMALL is heard.
DETECT_SIDE = 480
MIN_FACE_SIDE = 48  # box width in the original photo below which a face is too small to embed
SCORE_THRESHOLD = 0.7
NMS_THRESHOLD = 0.3
TOP_K = 50


@dataclass(frozen=True)
class Detection:
    """One face in image pixels: box (x, y, w, h), landmarks [5, 2] and score.

    Landmark order (YuNet's): right eye, left eye, nose tip, right and left mouth corner,
    "right" being the person's right, i.e. the left of the image.
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return self.box[2]


class FaceDetector:
    """YuNet over verified bytes; one OpenCV detector per thread (they are not thread-safe)."""

    def __init__(self, payload: bytes, sha256: str) -> None:
        """Wrap verified model bytes; use :meth:`load`, which checks them first."""
        self._payload = np.frombuffer(payload, dtype=np.uint8)
        self.sha256 = sha256
        self._local = threading.local()

    @classmethod
    def load(cls, path: Path | None = None, expected_sha256: str | None = None) -> FaceDetector:
        """Verify and open the detector (default: the committed file and its .sha256)."""
        payload, digest = read_pinned(path or DETECTOR_PATH, expected_sha256)
        detector = cls(payload, digest)
        detector._net((64, 64))  # fail at load, not on the first selfie, if OpenCV refuses it
        return detector

    def _net(self, size: tuple[int, int]) -> cv2.FaceDetectorYN:
        net = getattr(self._local, "net", None)
        if net is None:
            net = cv2.FaceDetectorYN.create(
                "onnx",
                self._payload,
                np.empty(0, dtype=np.uint8),
                size,
                SCORE_THRESHOLD,
                NMS_THRESHOLD,
                TOP_K,
            )
            self._local.net = net
        net.setInputSize(size)
        return net

    def detect_all(self, image: np.ndarray, side: int = DETECT_SIDE) -> list[Detection]:
        """Every face found in a BGR image, largest first, in the image's own pixels."""
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        factor = min(1.0, side / max(image.shape[:2]))
        small = (
            image
            if factor == 1.0
            else cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        )
        height, width = small.shape[:2]
        _, found = self._net((width, height)).detect(small)
        if found is None:
            return []
        faces = [
            Detection(
                box=tuple(float(v) / factor for v in row[:4]),
                landmarks=np.asarray(row[4:14], dtype=np.float32).reshape(5, 2) / factor,
                score=float(row[14]),
            )
            for row in found
        ]
        return sorted(faces, key=lambda f: -f.width)

    def detect(self, image: np.ndarray) -> Detection:
        """The one face of a selfie, or NoFace / MultipleFaces / FaceTooSmall.

        Faces under half the width of the largest are ignored: passers-by in the
        background, not a second applicant.
        """
        faces = self.detect_all(image)
        if not faces:
            raise NoFace("no face found")
        largest = faces[0]
        rivals = [f for f in faces if f.width >= largest.width / 2]
        if len(rivals) > 1:
            raise MultipleFaces(f"{len(rivals)} faces found")
        if largest.width < MIN_FACE_SIDE:
            raise FaceTooSmall(f"face {largest.width:.0f} px < {MIN_FACE_SIDE} px")
        return largest
