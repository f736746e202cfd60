"""SFace embeddings (OpenCV Zoo, Apache-2.0) from a SHA-256-pinned float ONNX file.

The graph takes RGB ``[n, 3, 112, 112]`` float pixels in 0..255 (it subtracts the mean and
scales itself, as OpenCV's ``FaceRecognizerSF`` feeds it) and returns ``[n, 128]``
features; they are L2-normalised here, so cosine similarity is a dot product.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime

from greencredit.models.bp import ARTIFACTS_DIR
from greencredit.models.pinned import ModelIntegrityError, pinned_onnx_session

from .align import ALIGNED_SIZE, align_face
from .calibration import Calibration
from .detect import FaceDetector
from .image import MAX_IMAGE_BYTES, decode_image

__all__ = ["FACE_MODEL_PATH", "FaceEmbedder", "calibration_path"]

FACE_MODEL_PATH = ARTIFACTS_DIR / "face_embedder_sface.onnx"
_INPUT = "data"
_OUTPUT = "fc1"


def calibration_path(model_path: Path) -> Path:
    """``face_embedder_sface.onnx`` -> ``face_embedder_sface.calibration.json``."""
    return model_path.with_name(model_path.stem + ".calibration.json")


class FaceEmbedder:
    """Detector + aligner + embedder for one selfie, with the calibrated thresholds."""

    def __init__(
        self,
        session: onnxruntime.InferenceSession,
        sha256: str,
        detector: FaceDetector,
        calibration: Calibration,
    ) -> None:
        """Wrap verified parts; use :meth:`load`, which checks every file first."""
        self._session = session
        self._sha256 = sha256
        self.detector = detector
        self.calibration = calibration

    @classmethod
    def load(
        cls,
        path: Path | None = None,
        expected_sha256: str | None = None,
        detector: FaceDetector | None = None,
    ) -> FaceEmbedder:
        """Verify and open the embedder, its calibration file and the detector."""
        path = path or FACE_MODEL_PATH
        session, digest = pinned_onnx_session(path, expected_sha256)
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if [i.name for i in inputs] != [_INPUT] or [o.name for o in outputs] != [_OUTPUT]:
            raise ModelIntegrityError(f"{path.name}: expected input 'data', output 'fc1'")
        calibration = Calibration.load(calibration_path(path))
        if calibration.embedder_sha256 != digest:
            # A threshold only means something for the model it was calibrated on.
            raise ModelIntegrityError(f"{path.name}: calibration is for another model file")
        return cls(session, digest, detector or FaceDetector.load(), calibration)

    @property
    def threshold(self) -> float:
        """Shipped 1:N match threshold (cosine)."""
        return self.calibration.threshold

    @property
    def review_threshold(self) -> float:
        """Similarities from here up to the match threshold are near misses (review)."""
        return self.calibration.review_threshold

    @property
    def version(self) -> str:
        """``face_sface@<first 12 hex of the embedder's SHA-256>`` for audit logs."""
        return f"face_sface@{self._sha256[:12]}"

    def embed(self, aligned: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """``[n, 128]`` unit embeddings of aligned BGR uint8 ``[n, 112, 112, 3]`` faces."""
        batch = np.asarray(aligned)
        if batch.ndim == 3:
            batch = batch[None]
        if batch.ndim != 4 or batch.shape[1:] != (ALIGNED_SIZE, ALIGNED_SIZE, 3):
            raise ValueError(
                f"aligned faces: expected shape (n, {ALIGNED_SIZE}, {ALIGNED_SIZE}, 3)"
            )
        if batch.shape[0] == 0:
            return np.empty((0, 128), dtype=np.float32)
        rgb = batch[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32)
        (raw,) = self._session.run([_OUTPUT], {_INPUT: np.ascontiguousarray(rgb)})
        raw = np.asarray(raw, dtype=np.float32)
        return raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)

    def aligned_face(self, image: np.ndarray) -> np.ndarray:
        """Detect the one face of a decoded selfie and align it (or a FaceError)."""
        return align_face(image, self.detector.detect(image).landmarks)

    def embed_image(self, data: bytes, max_bytes: int = MAX_IMAGE_BYTES) -> np.ndarray:
        """Decode, detect, align and embed one selfie: a ``[128]`` unit vector or a FaceError."""
        return self.embed(self.aligned_face(decode_image(data, max_bytes)))[0]
