"""Face pipeline: typed rejections, detection and embedding, artifact integrity, liveness logic."""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greencredit.models.face import (
    FACE_MODEL_PATH,
    FACE_SIZE,
    FaceEmbedder,
    FaceError,
    FrameObservation,
    ModelIntegrityError,
    align_face,
    assess_liveness,
    cosine_similarity,
    decode_image,
    detect_face,
    liveness,
    observe_frame,
    same_person,
)

FACES_DIR = Path(FACE_MODEL_PATH).parent.parent / "data" / "faces"
ARTIFACTS = FACE_MODEL_PATH.parent


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder.load()


@pytest.fixture(scope="module")
def astronaut_bytes() -> bytes:
    return (FACES_DIR / "astronaut.jpg").read_bytes()


@pytest.fixture(scope="module")
def held_out_faces() -> np.ndarray:
    with np.load(FACES_DIR / "lfw_test_faces.npz") as data:
        return np.asarray(data["faces"])


def _png(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", image)
    assert ok
    return encoded.tobytes()


def _reason(data: bytes) -> str:
    with pytest.raises(FaceError) as info:
        image = decode_image(data)
        detect_face(image)
    return info.value.reason


def _as_aligned(crop: np.ndarray) -> np.ndarray:
    """A 25x25 LFW crop brought to the embedder's input the way training did (no augmentation)."""
    big = cv2.resize(crop, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_CUBIC)
    return np.asarray(cv2.equalizeHist(big))


def test_not_an_image_is_unreadable() -> None:
    assert _reason(b"definitely not a picture") == "IMAGE_UNREADABLE"


def test_truncated_png_is_unreadable(astronaut_bytes: bytes) -> None:
    png = _png(np.full((100, 100, 3), 128, np.uint8))
    assert _reason(png[:40]) == "IMAGE_UNREADABLE"
    assert _reason(astronaut_bytes[:300]) == "IMAGE_UNREADABLE"


def test_fifty_megabyte_blob_is_refused_before_decoding() -> None:
    assert _reason(b"\x89PNG\r\n\x1a\n" + bytes(50_000_000)) == "IMAGE_TOO_LARGE"


def test_png_declaring_a_huge_canvas_is_refused() -> None:
    # A valid IHDR for 40000x40000 pixels with no pixel data: a decompression bomb's header.
    ihdr = struct.pack(">IIBBBBB", 40_000, 40_000, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    header = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    assert _reason(b"\x89PNG\r\n\x1a\n" + header) == "IMAGE_TOO_LARGE"


def test_one_pixel_image_is_too_small() -> None:
    assert _reason(_png(np.zeros((1, 1, 3), np.uint8))) == "IMAGE_TOO_SMALL"


@pytest.mark.parametrize(
    "image",
    [
        np.full((480, 640, 3), (40, 160, 90), np.uint8),
        np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (480, 1)),
    ],
    ids=["solid", "gradient"],
)
def test_image_without_a_face(image: np.ndarray) -> None:
    assert _reason(_png(image)) == "NO_FACE"


def test_two_faces_side_by_side_are_refused(astronaut_bytes: bytes) -> None:
    face = decode_image(astronaut_bytes)
    assert _reason(_png(np.hstack([face, face]))) == "MULTIPLE_FACES"


def test_small_face_is_refused(astronaut_bytes: bytes) -> None:
    face = decode_image(astronaut_bytes)
    small = cv2.resize(face, (200, 200), interpolation=cv2.INTER_AREA)  # face ~37 px wide
    canvas = np.full((480, 640, 3), 255, np.uint8)
    canvas[100:300, 200:400] = small
    assert _reason(_png(canvas)) == "FACE_TOO_SMALL"


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes_never_crash(data: bytes) -> None:
    with contextlib.suppress(FaceError):
        detect_face(decode_image(data))


def test_real_face_is_detected_and_embedded_to_a_unit_vector(
    embedder: FaceEmbedder, astronaut_bytes: bytes
) -> None:
    image = decode_image(astronaut_bytes)
    box = detect_face(image)
    assert box.w >= 48 and 100 < box.x + box.w / 2 < 350 and box.y < 200
    aligned = align_face(image, box)
    assert aligned.shape == (FACE_SIZE, FACE_SIZE) and aligned.dtype == np.uint8
    vector = embedder.embed_image(astronaut_bytes)
    assert vector.shape == (128,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(embedder.embed(aligned)[0], vector, atol=1e-6)


def test_batch_equals_one_by_one(embedder: FaceEmbedder, held_out_faces: np.ndarray) -> None:
    batch = np.stack([_as_aligned(f) for f in held_out_faces])
    together = embedder.embed(batch)
    alone = np.vstack([embedder.embed(face) for face in batch])
    assert np.allclose(together, alone, atol=1e-5)


def test_same_face_closer_than_other_faces_on_held_out_set(
    embedder: FaceEmbedder, held_out_faces: np.ndarray
) -> None:
    originals = embedder.embed(np.stack([_as_aligned(f) for f in held_out_faces]))
    flipped = embedder.embed(np.stack([_as_aligned(cv2.flip(f, 1)) for f in held_out_faces]))
    brighter = np.clip(held_out_faces.astype(np.int16) * 1.2 + 25, 0, 255).astype(np.uint8)
    brightened = embedder.embed(np.stack([_as_aligned(f) for f in brighter]))
    others = originals @ originals.T
    different = others[~np.eye(len(originals), dtype=bool)].mean()
    for copies in (flipped, brightened):
        same = np.einsum("nd,nd->n", originals, copies)
        assert same.mean() > different + 0.2
        assert (same > np.median(others, axis=1)).mean() >= 0.9


def test_threshold_comes_from_the_model_card_metrics(embedder: FaceEmbedder) -> None:
    metrics = json.loads((ARTIFACTS / "face_embedder.metrics.json").read_text())
    assert embedder.threshold == pytest.approx(metrics["threshold"])
    assert -1.0 < embedder.threshold < 1.0
    assert same_person(embedder.threshold, embedder.threshold)
    assert not same_person(embedder.threshold - 0.01, embedder.threshold)
    assert not same_person(1.0, float("nan"))  # a model without a threshold fails closed


def test_cosine_similarity_basics() -> None:
    a = np.array([1.0, 0.0])
    assert cosine_similarity(a, a) == pytest.approx(1.0)
    assert cosine_similarity(a, np.array([0.0, 2.0])) == pytest.approx(0.0)
    assert cosine_similarity(a, -a) == pytest.approx(-1.0)
    assert cosine_similarity(a, np.zeros(2)) == 0.0


def test_sha_mismatch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError):
        FaceEmbedder.load(expected_sha256="0" * 64)
    copy = tmp_path / "face_embedder.onnx"
    copy.write_bytes(FACE_MODEL_PATH.read_bytes() + b"\0")
    shutil.copy(ARTIFACTS / "face_embedder.onnx.sha256", tmp_path)
    with pytest.raises(ModelIntegrityError):
        FaceEmbedder.load(copy)


def test_missing_sidecar_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "face_embedder.onnx"
    shutil.copy(FACE_MODEL_PATH, copy)
    with pytest.raises(ModelIntegrityError):
        FaceEmbedder.load(copy)


# --- liveness on synthetic observation sequences -------------------------------------------

OPEN = FrameObservation(frontal=True, eyes_open=True, profile=False)
CLOSED = FrameObservation(frontal=True, eyes_open=False, profile=False)
PROFILE = FrameObservation(frontal=False, eyes_open=False, profile=True)
NOTHING = FrameObservation(frontal=False, eyes_open=False, profile=False)


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


def test_too_many_frames_is_refused() -> None:
    assert liveness([b""] * 500).reason == "TOO_MANY_FRAMES"


def test_printed_photo_is_not_live(astronaut_bytes: bytes) -> None:
    # A still photo held in front of the camera: same frame again and again.
    result = liveness([astronaut_bytes] * 4 + [b"garbage"])
    assert not result.live


def test_large_photo_is_searched_downscaled_and_box_mapped_back(astronaut_bytes: bytes) -> None:
    image = decode_image(astronaut_bytes)
    box = detect_face(image)
    big = cv2.resize(image, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    big_box = detect_face(big)
    assert abs(big_box.x - 3 * box.x) < 0.1 * big_box.w
    assert abs(big_box.w - 3 * box.w) < 0.15 * big_box.w


@pytest.mark.parametrize("angle", [-10, 8])
def test_capture_changes_of_one_selfie_still_match(
    embedder: FaceEmbedder, astronaut_bytes: bytes, angle: float
) -> None:
    image = decode_image(astronaut_bytes)
    reference = embedder.embed_image(astronaut_bytes)
    box = detect_face(image)
    centre = (box.x + box.w / 2, box.y + box.h / 2)
    rotated = cv2.warpAffine(image, cv2.getRotationMatrix2D(centre, angle, 1.0), (512, 512))
    darker = np.clip(rotated * 0.7, 0, 255).astype(np.uint8)
    similarity = cosine_similarity(reference, embedder.embed_image(_png(darker)))
    assert same_person(similarity, embedder.threshold)


def test_faces_are_checked_concurrently_without_crashing() -> None:
    """The worker embeds a batch's selfies in a thread pool; OpenCV's cascade is not
    thread-safe (a shared one failed with a getScaleData assertion or a segfault)."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    from greencredit.streams.simulation.faces import FacePool

    pool = FacePool()
    rng = random.Random(1)
    images = [FacePool.photo(pool.honest[i % len(pool.honest)], rng) for i in range(48)]
    embedder = FaceEmbedder.load()
    with ThreadPoolExecutor(8) as threads:
        concurrent = list(threads.map(embedder.embed_image, images * 3))
    alone = [embedder.embed_image(image) for image in images]
    for i, vector in enumerate(concurrent):
        assert np.allclose(vector, alone[i % len(images)], atol=1e-5)


def _orl_frames() -> dict[tuple[str, int], bytes]:
    """The vendored ORL test photos by (person, photo number): real captures, not drawings."""
    with np.load(FACES_DIR / "orl_test_faces.npz") as data:
        blob, offsets = data["png"], data["offsets"]
        keys = zip(data["person"].tolist(), data["photo"].tolist(), strict=True)
        return {
            key: blob[a:b].tobytes()
            for key, (a, b) in zip(keys, itertools.pairwise(offsets), strict=True)
        }


def test_a_real_blink_and_a_real_head_turn_are_seen() -> None:
    frames = _orl_frames()
    # s8 closes her eyes on photos 3 and 7 and has them open on the other eight: at 80 px
    # faces the eye search must still see open eyes, or every small face would "blink".
    for number in range(1, 11):
        observed = observe_frame(frames[("s8", number)])
        assert observed.frontal and observed.eyes_open == (number not in (3, 7)), number
    blink = liveness([frames[("s8", 1)], frames[("s8", 3)], frames[("s8", 4)]])
    assert blink.blink and not blink.head_turn and blink.reason == "NO_HEAD_TURN"
    # s30 turns his head on photo 5 (three-quarter view: the profile cascade fires).
    assert observe_frame(frames[("s30", 5)]).profile
    turn = liveness([frames[("s30", 1)], frames[("s30", 5)], frames[("s30", 6)]])
    assert turn.head_turn and not turn.blink and turn.reason == "NO_BLINK"
    # The same real photo over and over (a printed photo held up) shows neither gesture.
    assert not liveness([frames[("s8", 1)]] * 5).live
