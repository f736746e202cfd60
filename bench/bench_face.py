"""Face check of one 640x480 image: decode + detect + align + embed + blacklist match.

Target (issue): p50 <= 40 ms on one core against a 100,000-entry blacklist (p99 reported).
Pinned to one core, one ONNX thread and one BLAS thread, as a worker runs it.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.results_io import write_result  # noqa: E402
from greencredit.infra.face_blacklist import BlacklistMatcher  # noqa: E402
from greencredit.models.face import FaceEmbedder, align_face, decode_image  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results" / "face.json"
FACE = ROOT / "models" / "data" / "faces" / "astronaut.jpg"


def _image_640x480() -> bytes:
    image = cv2.imdecode(np.frombuffer(FACE.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, f"{FACE} does not decode"
    canvas = cv2.resize(image, (640, 480))
    ok, encoded = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


def main() -> dict:
    """Measure and write bench/results/face.json."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cv2.setNumThreads(1)
    embedder = FaceEmbedder.load()
    data = _image_640x480()
    dim = embedder.embed_image(data).shape[0]
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(100_000, dim)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    matcher = BlacklistMatcher([f"bl-{i}" for i in range(len(matrix))], matrix, embedder.threshold)
    for _ in range(10):
        matcher.best_match(embedder.embed_image(data)[None, :])
    timings, stages = [], {"decode": [], "detect": [], "align+embed": [], "match": []}
    for _ in range(300):
        start = time.perf_counter()
        matcher.best_match(embedder.embed_image(data)[None, :])
        timings.append((time.perf_counter() - start) * 1000)
    for _ in range(100):  # the same work split into its stages
        t0 = time.perf_counter()
        image = decode_image(data)
        t1 = time.perf_counter()
        face = embedder.detector.detect(image)
        t2 = time.perf_counter()
        vector = embedder.embed(align_face(image, face.landmarks))
        t3 = time.perf_counter()
        matcher.best_match(vector)
        t4 = time.perf_counter()
        for name, a, b in (("decode", t0, t1), ("detect", t1, t2), ("align+embed", t2, t3)):
            stages[name].append((b - a) * 1000)
        stages["match"].append((t4 - t3) * 1000)
    timings.sort()
    result = {
        "benchmark": "face_check_640x480",
        "blacklist_entries": len(matrix),
        "embedding_dim": int(dim),
        "runs": len(timings),
        "ms_p50": round(timings[len(timings) // 2], 2),
        "ms_p99": round(timings[int(len(timings) * 0.99)], 2),
        "stage_ms_p50": {k: round(sorted(v)[len(v) // 2], 2) for k, v in stages.items()},
        "target_ms_p50": 40,
        "met": timings[len(timings) // 2] <= 40,
        "models": embedder.version,
        "cores": 1,
    }
    return write_result(RESULTS, result)


if __name__ == "__main__":
    main()
