"""Run the benchmarks: `python -m bench` (all) or `python -m bench scoring`."""

from __future__ import annotations

import sys

from bench import bench_face, bench_face_blacklist, bench_pipeline, bench_scoring

BENCHES = {
    "scoring": bench_scoring.main,
    "pipeline": bench_pipeline.main,
    "face_blacklist": bench_face_blacklist.main,
    "face": bench_face.main,
}

if __name__ == "__main__":
    names = sys.argv[1:] or list(BENCHES)
    for name in names:
        BENCHES[name]()
