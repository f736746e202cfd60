"""Face pipeline: typed rejections, detection, alignment and embedding, artifact integrity."""

from __future__ import annotations

import contextlib
import functools
import json
import random
import shutil
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greencredit.models.face import (
    ALIGNED_SIZE,
    DETECTOR_PATH,
    FACE_MODEL_PATH,
    TEMPLATE,
    FaceDetector,
    FaceEmbedder,
    FaceError,
    ModelIntegrityError,
    align_face,
    calibration_path,
    cosine_similarity,
    decode_image,
    same_person,
    similarity_transform,
)
from greencredit.streams.simulation.faces import FacePool

FACES_DIR = FACE_MODEL_PATH.parent.parent / "data" / "faces"
ARTIFACTS = FACE_MODEL_PATH.parent


@functools.cache
def _shared_embedder() -> FaceEmbedder:
    return FaceEmbedder.load()


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return _shared_embedder()


@pytest.fixture(scope="module")
def detector(embedder: FaceEmbedder) -> FaceDetector:
    return embedder.detector


@pytest.fixture(scope="module")
def astronaut_bytes() -> bytes:
    return (FACES_DIR / "astronaut.jpg").read_bytes()


def _png(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", image)
    assert ok
    return encoded.tobytes()


def _reason(embedder: FaceEmbedder, data: bytes) -> str:
    with pytest.raises(FaceError) as info:
        embedder.embed_image(data)
    return info.value.reason


def test_not_an_image_is_unreadable(embedder: FaceEmbedder) -> None:
    assert _reason(embedder, b"definitely not a picture") == "IMAGE_UNREADABLE"


def test_truncated_images_are_unreadable(embedder: FaceEmbedder, astronaut_bytes: bytes) -> None:
    png = _png(np.full((100, 100, 3), 128, np.uint8))
    assert _reason(embedder, png[:40]) == "IMAGE_UNREADABLE"
    assert _reason(embedder, astronaut_bytes[:300]) == "IMAGE_UNREADABLE"


def test_fifty_megabyte_blob_is_refused_before_decoding(embedder: FaceEmbedder) -> None:
    assert _reason(embedder, b"\x89PNG\r\n\x1a\n" + bytes(50_000_000)) == "IMAGE_TOO_LARGE"


def test_png_declaring_a_huge_canvas_is_refused(embedder: FaceEmbedder) -> None:
    # A valid IHDR for 40000x40000 pixels with no pixel data: a decompression bomb's header.
    ihdr = struct.pack(">IIBBBBB", 40_000, 40_000, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    header = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    assert _reason(embedder, b"\x89PNG\r\n\x1a\n" + header) == "IMAGE_TOO_LARGE"


def test_one_pixel_image_is_too_small(embedder: FaceEmbedder) -> None:
    assert _reason(embedder, _png(np.zeros((1, 1, 3), np.uint8))) == "IMAGE_TOO_SMALL"


@pytest.mark.parametrize(
    "image",
    [
        np.full((480, 640, 3), (40, 160, 90), np.uint8),
        np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (480, 1)),
    ],
    ids=["solid", "gradient"],
)
def test_image_without_a_face(embedder: FaceEmbedder, image: np.ndarray) -> None:
    assert _reason(embedder, _png(image)) == "NO_FACE"


def test_two_faces_side_by_side_are_refused(embedder: FaceEmbedder, astronaut_bytes: bytes) -> None:
    face = decode_image(astronaut_bytes)
    assert _reason(embedder, _png(np.hstack([face, face]))) == "MULTIPLE_FACES"


def test_small_face_is_refused(embedder: FaceEmbedder, astronaut_bytes: bytes) -> None:
    face = decode_image(astronaut_bytes)
    small = cv2.resize(face, (200, 200), interpolation=cv2.INTER_AREA)  # face ~34 px wide
    canvas = np.full((480, 640, 3), 255, np.uint8)
    canvas[100:300, 200:400] = small
    assert _reason(embedder, _png(canvas)) == "FACE_TOO_SMALL"


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes_never_crash(data: bytes) -> None:
    with contextlib.suppress(FaceError):
        _shared_embedder().embed_image(data)


def test_real_face_is_detected_aligned_and_embedded(
    embedder: FaceEmbedder, detector: FaceDetector, astronaut_bytes: bytes
) -> None:
    image = decode_image(astronaut_bytes)
    face = detector.detect(image)
    x, y, w, _ = face.box
    assert w >= 48 and 100 < x + w / 2 < 350 and y < 200
    right_eye, left_eye, nose = face.landmarks[:3]
    assert right_eye[0] < nose[0] < left_eye[0] and nose[1] > right_eye[1]
    aligned = align_face(image, face.landmarks)
    assert aligned.shape == (ALIGNED_SIZE, ALIGNED_SIZE, 3) and aligned.dtype == np.uint8
    vector = embedder.embed_image(astronaut_bytes)
    assert vector.shape == (128,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(embedder.embed(aligned)[0], vector, atol=1e-6)


def test_alignment_puts_the_landmarks_on_the_template() -> None:
    rng = np.random.default_rng(3)
    angle, scale, shift = 0.3, 2.5, np.array([40.0, -12.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    # Landmarks that are the template seen rotated, scaled and shifted.
    source = (TEMPLATE - shift) @ np.linalg.inv(scale * rotation).T
    matrix = similarity_transform(source + rng.normal(0, 1e-9, source.shape))
    mapped = source @ matrix[:, :2].T + matrix[:, 2]
    assert np.allclose(mapped, TEMPLATE, atol=1e-5)


def test_batch_equals_one_by_one(embedder: FaceEmbedder) -> None:
    pool = FacePool()
    rng = random.Random(0)
    faces = [embedder.aligned_face(decode_image(FacePool.photo(p, rng))) for p in pool.honest[:5]]
    together = embedder.embed(np.stack(faces))
    alone = np.vstack([embedder.embed(face) for face in faces])
    assert np.allclose(together, alone, atol=1e-5)


def test_threshold_comes_from_the_calibration_file(embedder: FaceEmbedder) -> None:
    calibration = json.loads(calibration_path(FACE_MODEL_PATH).read_text())
    assert embedder.threshold == calibration["threshold"]
    assert embedder.review_threshold == calibration["review_threshold"]
    assert 0.0 < embedder.review_threshold < embedder.threshold < 1.0
    assert same_person(embedder.threshold, embedder.threshold)
    assert not same_person(embedder.threshold - 0.01, embedder.threshold)
    assert not same_person(1.0, float("nan"))  # a missing threshold fails closed


def test_cosine_similarity_basics() -> None:
    a = np.array([1.0, 0.0])
    assert cosine_similarity(a, a) == pytest.approx(1.0)
    assert cosine_similarity(a, np.array([0.0, 2.0])) == pytest.approx(0.0)
    assert cosine_similarity(a, -a) == pytest.approx(-1.0)
    assert cosine_similarity(a, np.zeros(2)) == 0.0


def test_sha_mismatch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError):
        FaceEmbedder.load(expected_sha256="0" * 64)
    with pytest.raises(ModelIntegrityError):
        FaceDetector.load(expected_sha256="0" * 64)
    copy = tmp_path / FACE_MODEL_PATH.name
    copy.write_bytes(FACE_MODEL_PATH.read_bytes() + b"\0")
    shutil.copy(ARTIFACTS / (FACE_MODEL_PATH.name + ".sha256"), tmp_path)
    with pytest.raises(ModelIntegrityError):
        FaceEmbedder.load(copy)


def test_missing_sidecars_are_refused(tmp_path: Path) -> None:
    copy = tmp_path / FACE_MODEL_PATH.name
    shutil.copy(FACE_MODEL_PATH, copy)
    with pytest.raises(ModelIntegrityError):
        FaceEmbedder.load(copy)  # no .sha256
    shutil.copy(ARTIFACTS / (FACE_MODEL_PATH.name + ".sha256"), tmp_path)
    with pytest.raises(ModelIntegrityError):
        FaceEmbedder.load(copy)  # no calibration (or its .sha256) beside it
    detector = tmp_path / DETECTOR_PATH.name
    shutil.copy(DETECTOR_PATH, detector)
    with pytest.raises(ModelIntegrityError):
        FaceDetector.load(detector)


def test_calibration_for_another_model_is_refused(tmp_path: Path) -> None:
    import hashlib

    calibration = json.loads(calibration_path(FACE_MODEL_PATH).read_text())
    calibration["embedder_sha256"] = "0" * 64
    copy = tmp_path / FACE_MODEL_PATH.name
    shutil.copy(FACE_MODEL_PATH, copy)
    shutil.copy(ARTIFACTS / (FACE_MODEL_PATH.name + ".sha256"), tmp_path)
    payload = json.dumps(calibration).encode()
    target = calibration_path(copy)
    target.write_bytes(payload)
    target.with_name(target.name + ".sha256").write_text(hashlib.sha256(payload).hexdigest())
    with pytest.raises(ModelIntegrityError, match="another model"):
        FaceEmbedder.load(copy)


def test_large_photo_is_searched_downscaled_and_mapped_back(
    detector: FaceDetector, astronaut_bytes: bytes
) -> None:
    image = decode_image(astronaut_bytes)
    face = detector.detect(image)
    big = cv2.resize(image, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    big_face = detector.detect(big)
    assert abs(big_face.box[0] - 3 * face.box[0]) < 0.1 * big_face.width
    assert abs(big_face.width - 3 * face.width) < 0.15 * big_face.width
    assert np.allclose(big_face.landmarks, 3 * face.landmarks, atol=0.05 * big_face.width)


@pytest.mark.parametrize("angle", [-15, 10])
def test_capture_changes_of_one_selfie_still_match(
    embedder: FaceEmbedder, astronaut_bytes: bytes, angle: float
) -> None:
    image = decode_image(astronaut_bytes)
    reference = embedder.embed_image(astronaut_bytes)
    x, y, w, h = embedder.detector.detect(image).box
    centre = (x + w / 2, y + h / 2)
    rotated = cv2.warpAffine(image, cv2.getRotationMatrix2D(centre, angle, 1.0), (512, 512))
    darker = np.clip(rotated * 0.7, 0, 255).astype(np.uint8)
    similarity = cosine_similarity(reference, embedder.embed_image(_png(darker)))
    assert same_person(similarity, embedder.threshold)


def test_faces_are_checked_concurrently_without_crashing(embedder: FaceEmbedder) -> None:
    """The worker embeds a batch's selfies in a thread pool; OpenCV's detector objects are
    not thread-safe, so each thread gets its own."""
    pool = FacePool()
    rng = random.Random(1)
    images = [FacePool.photo(pool.honest[i % len(pool.honest)], rng) for i in range(24)]
    with ThreadPoolExecutor(4) as threads:
        concurrent = list(threads.map(embedder.embed_image, images * 2))
    alone = [embedder.embed_image(image) for image in images]
    for i, vector in enumerate(concurrent):
        assert np.allclose(vector, alone[i % len(images)], atol=1e-5)
