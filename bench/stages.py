"""Throughput stages on a shared stack: the bare passthrough or the worker reads one topic.

The events are produced before the consumer under test starts, so the producer does not
compete with it; each stage reads its topic with a consumer group that has not read it.

How each rate is computed (the same for the passthrough and the worker where both apply):
- "counter": from 100 ms polls of the process's GET /health/ `processed_by_topic` (input
  messages finished: processed and their outputs acknowledged), between the first poll that
  saw work done and the last that saw work left (bench/stats.py counter_rate). Used for
  every topic and both sides: the worker writes a fraud alert only above threshold, so its
  outputs cannot time transactions.
- "outputs": first to last decision's Kafka timestamp (bench/stats.py rate_of), read after
  the stage: the worker's applications only, as a cross-check (and the CPU window).
Nothing reads an output topic while a stage runs (see Recorder in bench/harness.py).
"""

from __future__ import annotations

import time
from typing import Any

from bench.harness import Bench, Recorder, start_passthrough, stop_process
from bench.probes import CpuSampler, HealthPoller, processed
from bench.stats import counter_rate, cpu_in_window, cpu_per_event, idle_since, rate_of
from greencredit.infra.embedded import free_port
from greencredit.infra.worker_process import WorkerProcess
from greencredit.streams import topics

__all__ = [
    "passthrough_stage",
    "worker_applications",
    "worker_stage",
]

APPLICATIONS = topics.LOAN_APPLICATIONS.name
DECISIONS = topics.DECISIONS.name
DISBURSEMENTS = topics.DISBURSEMENTS.name
TIMEOUT_S = 900.0


def passthrough_stage(
    bench: Bench,
    source: str,
    count: int,
    name: str,
    stage: str = "passthrough",
    run: int = 1,
    client: str = "faust",
) -> dict[str, Any]:
    """The bare Faust app (`client` "rdkafka": the librdkafka loop) reads `count` messages.

    "passthrough" copies each to a sink; "consume" writes nothing. Timed by the process's
    counter, which moves only once a message's copy is acknowledged (as the worker's moves
    once its outputs are). The copies are not read back: that costs the shared broker
    more than the copying (see Recorder), and Tansu's end offsets lag the log. Each `run`
    is a consumer group of its own, so a second run reads the same messages again.
    """
    sink = f"bench.{name}-out"
    port = free_port()
    group = f"bench-{client}-{stage}-{name}-{run}"
    proc = start_passthrough(bench, stage, source, sink, port, group, client)
    cpu = CpuSampler(proc.pid).start()
    poller = HealthPoller(port, processed(source)).start()
    try:
        poller.wait_for(count, TIMEOUT_S, lambda: proc.poll() is None)
    finally:
        polls, cpu_samples = poller.stop(), cpu.stop()
        stop_process(proc)
    counter = counter_rate(polls, count)
    return {
        "counter_events_per_second": round(counter["events_per_second"]),
        "cpu_us_per_event": cpu_in_window(cpu_samples, counter),
    }


def worker_stage(bench: Bench, source: str, count: int, name: str) -> dict[str, Any]:
    """One worker processes `count` pre-loaded messages of `source`; timed by its counter."""
    worker = WorkerProcess(bench.endpoints, bench.work, f"bench-{name}-worker").start()
    assert worker.proc is not None
    cpu = CpuSampler(worker.proc.pid).start()
    poller = HealthPoller(worker.port, processed(source)).start()
    try:
        poller.wait_for(count, TIMEOUT_S, worker.alive)
    finally:
        polls, cpu_samples = poller.stop(), cpu.stop()
        worker.stop()
    counter = counter_rate(polls, count)
    return {
        "counter_events_per_second": round(counter["events_per_second"]),
        "cpu_us_per_event": cpu_in_window(cpu_samples, counter),
    }


def _wait_idle(cpu: CpuSampler, after: float, timeout: float = 60.0) -> dict[str, Any]:
    """When the worker went idle after `after`; past `timeout`, the last sample, flagged."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        idle = idle_since(cpu.snapshot(), after)
        if idle is not None:
            return {"at": idle[0], "idle_worker_cores": round(idle[1], 3), "detected": True}
        time.sleep(0.2)
    # Counting on to the end overstates the CPU rather than dropping work: say so.
    return {"at": cpu.snapshot()[-1][0], "idle_worker_cores": None, "detected": False}


def worker_applications(bench: Bench, count: int, warm_up: int) -> dict[str, Any]:
    """One worker decides `count` pre-loaded applications: rate, and CPU until it is idle.

    Rate: the worker's counter (as the passthrough's); the decisions' timestamps, first to
    last, as a cross-check. CPU: the worker's process tree (/proc
    utime + stime, children included) from decision number `warm_up` until the worker
    went idle after its last decision, so opening the loans of the disbursed applications
    is inside, wherever the worker does it; divided by the decisions after the warm-up.
    """
    decisions = Recorder(bench.endpoints.kafka, DECISIONS, from_end=True)
    disbursed = Recorder(bench.endpoints.kafka, DISBURSEMENTS, from_end=True)
    worker = WorkerProcess(bench.endpoints, bench.work, "bench-applications-worker").start()
    assert worker.proc is not None
    cpu = CpuSampler(worker.proc.pid).start()
    poller = HealthPoller(worker.port, processed(APPLICATIONS)).start()
    try:
        # Wait on the worker's own counter; the decisions are read afterwards (Recorder).
        poller.wait_for(count, TIMEOUT_S, worker.alive)
        seen = decisions.collect(count, 120)
        stamps = [ts for _, ts in decisions.messages]
        idle = _wait_idle(cpu, max(stamps) / 1000 if stamps else time.time())
        page = worker.health() or {}
        disbursed.collect(10**9, 120, quiet_s=2.0)  # what the stage emitted
    finally:
        polls = poller.stop()
        cpu_samples = cpu.stop()
        worker.stop()
    if seen < count:
        raise RuntimeError(f"the worker decided {seen} of {count} applications")
    opened = (page.get("processed_by_topic") or {}).get(DISBURSEMENTS, 0)
    return {
        "counter_events_per_second": round(counter_rate(polls, count)["events_per_second"]),
        "outputs_events_per_second": round(rate_of(stamps)),
        "cpu": {
            **cpu_per_event(cpu_samples, stamps, warm_up, idle["at"]),
            "idle_after_last_decision_s": round(idle["at"] - max(stamps) / 1000, 3),
            "idle_worker_cores": idle["idle_worker_cores"],
            "idle_detected": idle["detected"],
            "disbursements_emitted": len(disbursed.messages),
            "disbursements_consumed_by_worker": opened,
        },
    }
