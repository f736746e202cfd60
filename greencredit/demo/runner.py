"""Runs the simulated days against the engine and collects the summary.

Per simulated day: publish the day's events, wait until every application published so far
has its decision, hand new disbursements to the scenario (the borrowers' later repayments and
spending follow), let the analysts label, then publish the day's loan-ageing tick.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
from redis.asyncio import Redis

from greencredit.infra.face_blacklist import FaceBlacklist
from greencredit.models.face import FaceEmbedder
from greencredit.schemas import examples_dir
from greencredit.streams.codec import AvroCodec
from greencredit.streams.jsonform import from_json_form
from greencredit.streams.publish import EventPublisher
from greencredit.streams.simulation.faces import FacePool
from greencredit.streams.simulation.scenario import Scenario
from greencredit.streams.topics import topic

from .analysts import Analysts
from .desk import ConsoleDesk
from .observer import Observer
from .summary import rank_auc

__all__ = ["DemoRun", "seed_blacklist"]

POISON = [
    ("greencredit.loan-applications", b"\x00\x00\x00\x00\x01\x02truncated"),
    ("greencredit.transactions", b'{"not": "avro"}'),
    ("greencredit.device-signals", b"\x00\x00\x00\x03\xe7unknown schema id"),
]


async def _add_all(redis_url: str, pool: FacePool, key_prefix: str) -> list[str]:
    embedder = FaceEmbedder.load()
    client = Redis.from_url(redis_url, socket_timeout=5.0)
    try:
        blacklist = FaceBlacklist(client, key_prefix)
        return [
            await blacklist.add(
                embedder.embed_image(FacePool.original(person)),
                "FRAUD",
                "demo-fraud-ops",
                embedder.version,
            )
            for person in pool.fraudsters
        ]
    finally:
        await client.aclose()


def seed_blacklist(redis_url: str, pool: FacePool, key_prefix: str) -> list[str]:
    """Put the known fraudsters' faces on the blacklist (embeddings only, audited).

    ``key_prefix``: the workers' Settings.redis_key_prefix, so that they see these entries.
    """
    return asyncio.run(_add_all(redis_url, pool, key_prefix))


SLICE_HOURS = 1
LEARNING_EVERY = 10  # days between samples of the models' rolling AUC
# A worker opens an approved application's loan before the application counts as finished,
# so the applications' offsets cover the loans the next day's repayments are for.
LOAN_BOOK = (
    "greencredit.loan-applications",
    "greencredit.repayments",
    "greencredit.loan-servicing",
)
SLICE_PAUSE_S = 0.15


def _slices(events: list[tuple[str, dict[str, Any]]]) -> list[list[tuple[str, dict[str, Any]]]]:
    """A day's events (in time order) cut into SLICE_HOURS-hour slices, published in turn."""
    parts: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    for item in events:
        parts.setdefault(item[1]["occurred_at"].hour // SLICE_HOURS, []).append(item)
    return [parts[key] for key in sorted(parts)]


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


class DemoRun:
    """One demo run over a scenario; `observer` sees the topics, `on_day` refreshes the view."""

    def __init__(
        self,
        config: dict[str, Any],
        codec: AvroCodec,
        scenario: Scenario,
        observer: Observer,
        on_day: Callable[[], None],
        health: Callable[[], list[dict[str, Any]]],
        disturb: Callable[[int], None] = lambda day: None,
        desk: ConsoleDesk | None = None,
    ) -> None:
        self.config = config
        self.desk = desk  # the console the simulated analysts label through (None: topic)
        self.codec = codec
        self.scenario = scenario
        self.observer = observer
        self.on_day = on_day
        self.health = health  # the workers' health pages
        self.disturb = disturb  # called once a day's first events are out (fault injection)
        self.learning: list[dict[str, Any]] = []  # rolling AUC on labels, every LEARNING_EVERY days
        # "topic:partition" -> the offset after the last message some worker finished there,
        # merged over every health page ever read: a dead worker's progress stays counted.
        self.finished: dict[str, int] = {}
        self.publisher = EventPublisher(config, codec)
        self.analysts = Analysts(scenario)
        self.applications: set[str] = set()
        self.auc: dict[str, Any] = {}

    def _publish(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        for name, event in events:
            if name == "greencredit.loan-applications":
                self.applications.add(event["event_id"])
            self.publisher.publish(name, event)
        self.publisher.flush()

    def _wait_applied(self, topics: tuple[str, ...], timeout: float = 120) -> None:
        """Wait until the workers finished every message on `topics` published so far.

        The loan book must see a day's repayments before that day's tick, and the tick before
        the next day's repayments, or a payment could land before the day it was late on.
        Progress is tracked per partition by offset, not by counts: when a worker dies, its
        partitions move and the successor re-processes what was not committed, so counts
        would both lose the dead worker's share and count redeliveries twice.
        """
        targets = self._targets(topics)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for page in self.health():
                for where, offset in (page.get("finished_offsets") or {}).items():
                    self.finished[where] = max(self.finished.get(where, 0), int(offset))
            if all(self.finished.get(where, 0) >= end for where, end in targets.items()):
                return
            time.sleep(0.02)
        behind = sorted(w for w, end in targets.items() if self.finished.get(w, 0) < end)
        raise RuntimeError(
            f"workers did not finish {', '.join(topics)} within {timeout:.0f}s "
            f"(behind on {', '.join(behind)})"
        )

    def _targets(self, topics: tuple[str, ...]) -> dict[str, int]:
        """Per "topic:partition", the offset the workers must reach on `topics`."""
        ends = dict(self.publisher.written)
        return {f"{t}:{p}": end for (t, p), end in ends.items() if t in topics}

    def _wait_decided(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.observer.lock:
                missing = len(self.applications - self.observer.decisions.keys())
            if not missing:
                return
            time.sleep(0.05)
        raise RuntimeError(
            f"{missing} applications still undecided after {timeout:.0f}s: see the worker log"
        )

    def run(self) -> float:
        """All the days; returns wall seconds."""
        started = time.monotonic()
        example = from_json_form(
            self.codec.catalog.reader(topic("greencredit.lender-config").schema),
            orjson.loads((examples_dir() / "lender_config.json").read_bytes()),
        )
        self._publish(self.scenario.lender_configs(example))
        # Stored before the first application: no worker can have cached a default config
        # for these lenders yet, so the first scoring reads them.
        self._wait_applied(("greencredit.lender-config",))
        for name, raw in POISON:
            self.publisher.publish_raw(name, raw, key=b"poison")
        opened: set[str] = set()
        for day in range(self.scenario.days):
            for number, part in enumerate(_slices(self.scenario.day_events(day))):
                self._publish(part)
                if number == 0:
                    self.disturb(day)
                self._wait_decided(timeout=180)
                if any(t == "greencredit.device-signals" for t, _ in part):
                    # Agents of different topics run concurrently: give a device signal a
                    # moment to land before what happens an hour later is scored.
                    time.sleep(SLICE_PAUSE_S)
            with self.observer.lock:
                loans = {d["loan_id"]: d for d in self.observer.disbursements.values()}
                decisions = dict(self.observer.decisions)
                alerts = list(self.observer.alerts.values())
            for loan_id, loan in loans.items():
                if loan_id not in opened:
                    opened.add(loan_id)
                    self.scenario.on_disbursement(loan, day)
            reviewed = self.analysts.review(day, list(decisions.values()), alerts)
            outcomes = self.analysts.outcomes(day, decisions, loans)
            if self.desk is not None:  # the analysts label through the signed-in console
                self.desk.label_all(reviewed)
                reviewed = []
            self._publish(reviewed + outcomes)  # servicing reports outcomes itself
            self._wait_applied(LOAN_BOOK)
            self._publish([self.scenario.tick(day)])
            self._wait_applied(("greencredit.loan-clock",))
            self._update_auc()
            if day % LEARNING_EVERY == LEARNING_EVERY - 1 or day == self.scenario.days - 1:
                self.learning.append({"day": day + 1, **self.models()})
            self.on_day()
        self._settle()
        return time.monotonic() - started

    def _settle(self, quiet: float = 4.0, timeout: float = 120.0) -> None:
        """Wait until no output record has arrived for `quiet` seconds (the last ticks)."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            with self.observer.lock:
                total = sum(self.observer.records.values())
            if total != last:
                last, since = total, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
            time.sleep(0.2)

    def models(self) -> dict[str, dict[str, Any]]:
        """Per tenant, the engine's own rolling AUC on labelled outcomes.

        Read from the workers' health pages; the learner's view is the worker that saw most
        labels.
        """
        best: dict[str, dict[str, Any]] = {}
        for page in self.health():
            for tenant, snap in (page.get("models") or {}).items():
                if snap.get("n_labelled", 0) >= best.get(tenant, {}).get("labels", -1):
                    best[tenant] = {
                        "labels": snap.get("n_labelled", 0),
                        "online_lr_auc": _round(snap.get("lr_auc")),
                        "bp_auc": _round(snap.get("bp_auc")),
                    }
        return best

    def _update_auc(self, window: int = 150) -> None:
        """Online-LR risk vs ground truth over the first and the latest `window` decisions."""
        bad = self.scenario.truth.bad_subjects()
        with self.observer.lock:
            ordered = [self.observer.decisions[e] for e in self.observer.decision_order]

        def auc(chunk: list[dict[str, Any]]) -> float | None:
            rows = [(d["indicators"].get("online_lr_risk"), self._is_bad(d, bad)) for d in chunk]
            rows = [(s, b) for s, b in rows if s is not None]
            value = rank_auc([s for s, _ in rows], [b for _, b in rows])
            return None if value is None else round(value, 3)

        if len(ordered) >= window:
            self.auc = {
                "first": auc(ordered[:window]),
                "recent": auc(ordered[-window:]),
                "window": window,
                "decisions": len(ordered),
            }

    def _is_bad(self, decision: dict[str, Any], bad: set[str]) -> bool:
        if decision["application_id"] in bad:
            return True
        customer = self.scenario.customer(decision["customer_id"])
        return customer is not None and customer.credit_bad
