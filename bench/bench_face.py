"""Face check of one 640x480 image: decode + detect + align + embed + blacklist match.

Target (issue): <= 30 ms on one core against a 100,000-entry blacklist. Pinned to one core
and one ONNX thread, as a worker runs it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np

from bench.results_io import write_result
from greencredit.infra.face_blacklist import BlacklistMatcher
from greencredit.models.face import FaceEmbedder

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
    timings = []
    for _ in range(200):
        start = time.perf_counter()
        matcher.best_match(embedder.embed_image(data)[None, :])
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    result = {
        "benchmark": "face_check_640x480",
        "blacklist_entries": len(matrix),
        "embedding_dim": int(dim),
        "ms_p50": round(timings[len(timings) // 2], 2),
        "ms_p99": round(timings[int(len(timings) * 0.99)], 2),
        "target_ms": 30,
        "cores": 1,
    }
    return write_result(RESULTS, result)


if __name__ == "__main__":
    main()
