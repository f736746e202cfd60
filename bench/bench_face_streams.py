"""Selfies in the application stream: throughput with 25 % selfies against 0 %, and loop stalls.

Issue: the face check runs in a bounded thread pool so that a batch of selfies does not
stall the other streams (transactions, device signals) of the same worker. Two measurements
in one run, on fresh embedded stacks:

1. Throughput: the same number of pre-loaded applications through one worker, once without
   selfies and once with a 640x480 JPEG selfie on every fourth (one face-check thread, the
   default; then again with two). Rate from the decisions' timestamps, first to last.
2. Event-loop stalls: while a batch of 32 selfies is checked (real Redis blacklist of 1,000
   entries), a coroutine that wants to wake every millisecond (as the other agents do)
   records how late it wakes: with the shipped thread pool, and with the same analysis run
   inline on the loop (what a check without the pool would do).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from typing import Any

import cv2
import numpy as np
import redis.asyncio as aioredis

from bench.harness import Recorder, bench_stack, produce_all
from bench.load import APPLICATIONS, Load
from bench.probes import wait_processed
from bench.results_io import RESULTS_DIR, write_result
from bench.stats import rate_of
from greencredit.agents.face_check import FaceChecker
from greencredit.infra.face_blacklist import FaceBlacklist
from greencredit.infra.worker_process import WorkerProcess
from greencredit.models.face import FaceEmbedder, decode_image
from greencredit.streams.simulation.faces import FacePool

__all__ = ["main"]

RESULTS = RESULTS_DIR / "face_streams.json"
DECISIONS = "greencredit.decisions"
SELFIE_SHARE = 0.25
BATCH = 32


def selfies(count: int, seed: int = 0) -> list[bytes]:
    """640x480 JPEGs of the demo's honest people (each photo scaled up into a phone frame)."""
    pool, rng = FacePool(), random.Random(seed)
    out = []
    for i in range(count):
        face = decode_image(FacePool.photo(pool.honest[i % len(pool.honest)], rng))
        canvas = np.full((480, 640, 3), 90, np.uint8)
        big = cv2.resize(face, (276, 336), interpolation=cv2.INTER_CUBIC)
        canvas[72:408, 182:458] = big
        ok, encoded = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        out.append(encoded.tobytes())
    return out


def _throughput(events: int, share: float, photos: list[bytes], threads: int = 1) -> dict[str, Any]:
    load = Load(run=f"bench-{uuid.uuid4().hex[:8]}")
    every = round(1 / share) if share else 0

    def applications():
        for n in range(events):
            event = load.application(n)
            if every and n % every == 0:
                event["face_image"] = photos[n % len(photos)]
            yield load.encode(APPLICATIONS, event)

    with bench_stack() as bench:
        produce_all(bench.endpoints.kafka, applications())
        recorder = Recorder(bench.endpoints.kafka, DECISIONS)
        worker = WorkerProcess(
            bench.endpoints, bench.work, "bench-worker", FACE_CHECK_THREADS=str(threads)
        ).start()
        try:
            worker.wait_assigned(90)
            # The worker's counter says when; the decisions are read after (see Recorder).
            wait_processed(lambda: [worker.health()], APPLICATIONS, events, 900, worker.alive)
        finally:
            worker.stop()
        seen = recorder.collect(events, 120)
    if seen < events:
        raise RuntimeError(f"decided {seen} of {events} applications in 900 s")
    return {
        "selfie_share": share,
        "face_check_threads": threads,
        "selfies": len(range(0, events, every)) if every else 0,
        "applications_per_second": round(rate_of(ts for _, ts in recorder.messages), 1),
    }


async def _stalls(checker: FaceChecker, batch: list[dict[str, Any]], inline: bool) -> dict:
    late: list[float] = []
    running = True

    async def ticker() -> None:
        while running:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            late.append((time.perf_counter() - start) * 1000 - 1.0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    late.clear()
    began = time.perf_counter()
    if inline:
        for app in batch:
            checker._analyse(app["face_image"], [])  # what a check without the pool does
    else:
        await checker.check(batch)
    elapsed = time.perf_counter() - began
    running = False
    await task
    ordered = sorted(late)
    return {
        "batch_seconds": round(elapsed, 3),
        "loop_wakeups": len(ordered),
        "loop_late_ms_p99": round(ordered[int(len(ordered) * 0.99)], 2) if ordered else None,
        "loop_late_ms_max": round(ordered[-1], 2) if ordered else None,
    }


def _loop_stalls(photos: list[bytes]) -> dict[str, Any]:
    async def go(redis_url: str) -> dict[str, Any]:
        client = aioredis.Redis.from_url(redis_url)
        try:
            blacklist = FaceBlacklist(client)
            rng = np.random.default_rng(0)
            for vector in rng.standard_normal((1_000, 128)).astype(np.float32):
                await blacklist.add(vector, "BENCH", "bench", "bench")
            checker = FaceChecker(FaceEmbedder.load(), blacklist, 2_000_000, threads=1)
            batch = [{"face_image": p} for p in photos[:BATCH]]
            await checker.check(batch[:2])  # warm up: sessions, matrix load
            try:
                return {
                    "thread_pool": await _stalls(checker, batch, inline=False),
                    "inline_on_loop": await _stalls(checker, batch, inline=True),
                }
            finally:
                checker.close()
        finally:
            await client.aclose()

    with bench_stack() as bench:
        return asyncio.run(go(bench.endpoints.redis))


def main(events: int = 2_000) -> dict[str, Any]:
    """Measure both and write bench/results/face_streams.json."""
    photos = selfies(64)
    without = _throughput(events, 0.0, photos)
    with_selfies = _throughput(events, SELFIE_SHARE, photos)
    two_threads = _throughput(events, SELFIE_SHARE, photos, threads=2)
    result = {
        "benchmark": "face_checks_in_the_stream",
        "applications": events,
        "selfie": "640x480 JPEG, quality 90, one face ~280 px wide",
        "throughput": [without, with_selfies, two_threads],
        "throughput_ratio_25pct_vs_0pct": round(
            with_selfies["applications_per_second"] / without["applications_per_second"], 3
        ),
        "event_loop_during_a_batch_of_32_selfies": _loop_stalls(photos),
        "setup": "broker + Redis + one worker + a recording consumer on one box",
    }
    return write_result(RESULTS, result)


if __name__ == "__main__":
    main()
