"""Faust's per-event cost: the bare Faust hop against a bare librdkafka loop, in one run.

`python -m bench hop` starts one embedded broker and pre-loads encoded applications into a
topic of its own (bench.hop-in, 6 partitions), `REPEAT` times over: the librdkafka loop is
so much faster that one copy passes in about 100 ms, too short to time with 100 ms counter
polls and 10 ms /proc ticks. Each client reads as many messages as lasts it seconds (Faust
the first `applications`, librdkafka all of them), every run with a consumer group of its
own, in the order A B B A so that a drift of the box's speed falls on both alike:
- "passthrough": copy every message to a sink topic, wait for the acks, commit;
  Faust (bench/passthrough_app.py) and librdkafka (bench/rdkafka_hop.py);
- "consume": the same without writing (the floor of each client);
- then the engine's worker on `applications` of the same applications (its own topic),
  for scale: CPU per decision end to end, as bench streams measures it.
Rates and CPU from each process's health counter and /proc (bench/stages.py). Writes
bench/results/hop.json; the README's note on the application path quotes it.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from bench.harness import Bench, bench_stack, produce_all
from bench.load import Load
from bench.results_io import RESULTS_DIR, write_result
from bench.stages import passthrough_stage, worker_applications

__all__ = ["main"]

RESULTS = RESULTS_DIR / "hop.json"
HOP_IN, HOP_OUT = "bench.hop-in", "bench.hop-out"
REPEAT = 10  # copies of the applications in HOP_IN (see above)
WARM_UP = 500  # decisions the worker's CPU window leaves out (as bench streams does)
HOW = (
    "Both clients read the same pre-loaded encoded applications (bench.hop-in: the"
    " applications {repeat} times over; Faust reads the first {count}, librdkafka all),"
    " each run with a consumer group of its own."
    " Rate: 100 ms polls of the process's /health/ processed_by_topic (counter_rate); CPU:"
    " utime + stime of the process tree from /proc over the same window, per event. Order"
    " faust, rdkafka, rdkafka, faust (per stage), so drift of the box hits both; each"
    " figure is the mean of its two runs. Worker: bench streams' applications stage."
)


def _pair(bench: Bench, count: int, stage: str) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"faust": [], "rdkafka": []}
    counts = {"faust": count, "rdkafka": count * REPEAT}
    for run, client in enumerate(("faust", "rdkafka", "rdkafka", "faust"), start=1):
        result = passthrough_stage(bench, HOP_IN, counts[client], "hop", stage, run, client)
        print(f"  {stage} {client}: {result}", flush=True)
        runs[client].append(result)
    summary: dict[str, Any] = {}
    for client, results in runs.items():
        rates = [r["counter_events_per_second"] for r in results]
        cpus = [r["cpu_us_per_event"] for r in results if r["cpu_us_per_event"] is not None]
        summary[client] = {
            "events": counts[client],
            "events_per_second": round(sum(rates) / len(rates)),
            "cpu_us_per_event": round(sum(cpus) / len(cpus), 1) if cpus else None,
            "runs": results,
        }
    faust, rdkafka = summary["faust"], summary["rdkafka"]
    if faust["cpu_us_per_event"] and rdkafka["cpu_us_per_event"]:
        summary["faust_extra_cpu_us_per_event"] = round(
            faust["cpu_us_per_event"] - rdkafka["cpu_us_per_event"], 1
        )
    if rdkafka["events_per_second"]:
        summary["faust_over_rdkafka_rate"] = round(
            faust["events_per_second"] / rdkafka["events_per_second"], 3
        )
    return summary


def main(applications: int = 20_000) -> dict[str, Any]:
    """Run the four hop stages, then the worker, on one stack; write hop.json."""
    load = Load(run=f"bench-{uuid.uuid4().hex[:8]}")
    result: dict[str, Any] = {
        "benchmark": "hop",
        "setup": "one embedded Tansu broker (+ Redis for the worker); one process under test"
        " at a time; the bench process and the broker share the box's cores",
        "applications": applications,
        "how": HOW.format(repeat=REPEAT, count=applications),
    }
    messages = list(load.applications(applications))
    with bench_stack([HOP_IN, HOP_OUT]) as bench:
        produce_all(bench.endpoints.kafka, messages * REPEAT, topic=HOP_IN)
        produce_all(bench.endpoints.kafka, messages)  # the worker's own topic
        print(f"hop: {applications} applications x {REPEAT} pre-loaded", flush=True)
        for stage in ("passthrough", "consume"):
            result[stage] = _pair(bench, applications, stage)
            result[stage]["load_average_1_min_at_end"] = round(os.getloadavg()[0], 2)
        worker = worker_applications(bench, applications, WARM_UP)
        print(f"  worker: {worker}", flush=True)
        result["worker"] = worker
    return write_result(RESULTS, result)
