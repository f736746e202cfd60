"""Five-point similarity alignment to SFace's 112x112 template.

The same warp as OpenCV's ``FaceRecognizerSF.alignCrop``: a least-squares similarity
transform (rotation, uniform scale, shift; Umeyama 1991) from the detector's five landmarks
to the template the embedder was trained on, then a bilinear warp.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["ALIGNED_SIZE", "TEMPLATE", "align_face", "similarity_transform"]

ALIGNED_SIZE = 112
# SFace's template (OpenCV face_recognize.cpp): eyes, nose tip, mouth corners, in the
# detector's landmark order (person's right eye first, at the left of the image).
TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def similarity_transform(source: np.ndarray, target: np.ndarray = TEMPLATE) -> np.ndarray:
    """The 2x3 similarity matrix that maps ``source`` points onto ``target`` (least squares)."""
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(covariance)
    d = np.ones(2)
    if np.linalg.det(covariance) < 0:
        d[1] = -1.0
    rotation = u @ np.diag(d) @ vt
    variance = src_c.var(axis=0).sum()
    scale = float((s * d).sum() / variance) if variance > 0 else 1.0
    shift = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, shift[:, None]])


def align_face(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """BGR uint8 ``[112, 112, 3]`` face warped so its landmarks sit on the template."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    matrix = similarity_transform(np.asarray(landmarks).reshape(5, 2))
    aligned = cv2.warpAffine(image, matrix, (ALIGNED_SIZE, ALIGNED_SIZE), flags=cv2.INTER_LINEAR)
    return np.asarray(aligned, dtype=np.uint8)
