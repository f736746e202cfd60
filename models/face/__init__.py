"""Face checks for onboarding: decode a selfie, find one face, align it, embed it, test liveness.

Pure: no Kafka, no Redis, no network. YuNet (``cv2.FaceDetectorYN``) finds the face and its
five landmarks, a similarity warp aligns it to SFace's template, and SFace (onnxruntime)
embeds it; both model files are SHA-256-pinned (see ``models/artifacts/face_models.card.md``).
The 1:N blacklist thresholds come from ``face_embedder_sface.calibration.json``.

    image.py        decoding and size limits; the FaceError reason codes
    detect.py       YuNet: the one face of a selfie, with landmarks
    align.py        five-point similarity warp to the 112x112 template
    embed.py        SFace embeddings and the calibrated thresholds
    calibration.py  the 1:N threshold rule and verification metrics
    liveness.py     blink and head turn over video frames
"""

from __future__ import annotations

import numpy as np

from greencredit.models.pinned import ModelIntegrityError

from .align import ALIGNED_SIZE, TEMPLATE, align_face, similarity_transform
from .calibration import Calibration, per_comparison_far, roc_auc, tar_at_far, threshold_for_far
from .detect import DETECTOR_PATH, MIN_FACE_SIDE, Detection, FaceDetector
from .embed import FACE_MODEL_PATH, FaceEmbedder, calibration_path
from .image import (
    MAX_IMAGE_BYTES,
    FaceError,
    FaceTooSmall,
    ImageTooLarge,
    ImageTooSmall,
    ImageUnreadable,
    MultipleFaces,
    NoFace,
    decode_image,
)
from .liveness import (
    MAX_LIVENESS_FRAMES,
    FrameObservation,
    LivenessResult,
    assess_liveness,
    liveness,
    observe_frame,
    yaw_asymmetry,
)

__all__ = [
    "ALIGNED_SIZE",
    "DETECTOR_PATH",
    "FACE_MODEL_PATH",
    "MAX_IMAGE_BYTES",
    "MAX_LIVENESS_FRAMES",
    "MIN_FACE_SIDE",
    "TEMPLATE",
    "Calibration",
    "Detection",
    "FaceDetector",
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
    "calibration_path",
    "cosine_similarity",
    "decode_image",
    "liveness",
    "observe_frame",
    "per_comparison_far",
    "roc_auc",
    "same_person",
    "similarity_transform",
    "tar_at_far",
    "threshold_for_far",
    "yaw_asymmetry",
]


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the angle between two embeddings (1 = same direction)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / denominator if denominator else 0.0


def same_person(similarity: float, threshold: float) -> bool:
    """Accept a match when the similarity reaches the threshold (NaN fails closed)."""
    return similarity >= threshold
