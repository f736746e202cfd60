"""The application processor on in-memory stores, against models/decision.py's `decide`.

The processor tier: agents' processing functions driven in process with the in-memory
stores of infra/memory.py (no broker, no Redis). The worker gathers facts, calls `decide`
and reserves funders in the store; here its records (decisions, reviews, disbursements)
must equal `decide`'s on the same facts, also when another worker filled a funder since
the usage was read or an earlier delivery holds one. A batch of N decides what N batches
of one decide, and a recorded decision replayed by `greencredit score --replay` is
reproduced.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greencredit.agents.applications import process_applications
from greencredit.agents.face_check import FaceChecker
from greencredit.agents.lender_configs import process_lender_configs
from greencredit.infra.engine_store import FundingRequest
from greencredit.infra.memory import (
    MemoryEngineState,
    MemoryFaceBlacklist,
    MemoryFeatureStore,
)
from greencredit.models.decision import (
    ApplicationFacts,
    Decision,
    decide,
    replay_facts,
)
from greencredit.models.face import FaceEmbedder
from greencredit.models.green import LOAN_PURPOSES
from greencredit.models.scoring import ApplicationScorer
from greencredit.streams.jsonform import to_json_form
from tests.factories import application
from tests.processors.support import (
    APPLICATIONS,
    BOOTSTRAP,
    BP,
    FACE,
    FUNDERS,
    NOW,
    SETTINGS,
    TENANT,
    T,
    batch,
    decoded,
    gather_facts,
    lender_document,
    lender_event,
    lenders,
    memory_worker,
    messages,
    records_of,
)


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder.load()


def test_the_worker_emits_what_decide_decides(embedder: FaceEmbedder) -> None:
    """Same facts: every decision, review and disbursement record is equal, every path run."""
    apps = batch(30)
    event = lender_event()
    event["face_match_threshold"] = 0.9  # the lender's own, passed to the face check

    async def main() -> tuple[Any, list[Decision], list[dict[str, Any]]]:
        worker = memory_worker(embedder)
        await worker.faces.blacklist.add(
            embedder.embed_image(FACE), "KNOWN_FRAUD", "analyst-1", embedder.version
        )
        await process_lender_configs(worker.configs, messages("greencredit.lender-config", [event]))
        result = await process_applications(worker.applications, messages(APPLICATIONS, apps), NOW)
        # The same facts, gathered from fresh stores holding the same blacklist.
        [document] = (await worker.state.configs([TENANT])).values()
        seen = decoded(apps)
        faces = FaceChecker(embedder, worker.faces.blacklist, SETTINGS.face_image_max_bytes)
        facts = await gather_facts(seen, MemoryFeatureStore(), faces, document)
        return result, decide(seen, facts, lenders(document), ApplicationScorer(BP)), seen

    result, decisions, seen = asyncio.run(main())
    worker = {topic: [o.record for o in result.outputs if o.topic == topic] for topic in (
        "greencredit.decisions", "greencredit.reviews", "greencredit.disbursements")}  # fmt: skip
    decision_records, disbursements = records_of(seen, decisions)
    assert worker["greencredit.decisions"] == decision_records
    assert worker["greencredit.disbursements"] == disbursements
    assert worker["greencredit.reviews"] == [
        r for r in decision_records if r["decision"] == "REVIEW"
    ]
    # The batch exercised every path the decision has.
    codes = {r["code"] for record in decision_records for r in record["reasons"]}
    assert {"FUNDING_UNAVAILABLE", "FACE_BLACKLIST_HIT", "DEVICE_FARM", "IDENTITY_INVALID",
            "VELOCITY_BURST", "FACE_UNVERIFIED"} <= codes  # fmt: skip
    outcomes = {d.outcome for d in decisions}
    assert outcomes == {"APPROVE", "REVIEW", "DECLINE"}
    assert {d.funder_id for d in decisions if d.terms} == {"green", "grey"}
    assert any(d["rate_discount_bps"] == 80 for d in disbursements)


# Funders with room for the whole batch: which funder takes a loan then does not depend on
# the order in which the worker's reservations are made.
ROOMY = json.dumps(
    [
        {"funder_id": "green", "green_only": True, "capacity_minor": 90_000_000,
         "max_risk_score": 0.6},
        {"funder_id": "grey", "green_only": False, "capacity_minor": 90_000_000,
         "max_risk_score": 0.5, "categories": None},
    ]
)  # fmt: skip


class StaleUsage(MemoryEngineState):
    """Answers the first usage read as if nothing were used (another worker reserved since)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def decision_state(self, application_ids, funders):
        known = await super().decision_state(application_ids, funders)
        self.reads += 1
        unused = {t: dict.fromkeys(ids, 0) for t, ids in funders.items()}
        return replace(known, funder_used_minor=unused)

    async def funder_usages(self, funders):
        self.reads += 1
        return await super().funder_usages(funders)


def _reserve(state: MemoryEngineState, funder: str, application: str, amount: int) -> None:
    request = FundingRequest(TENANT, funder, application, amount, 90_000_000)
    assert asyncio.run(state.reserve_fundings([request])) == [funder]


def _worker_and_decide(
    apps: list[dict[str, Any]],
    state: MemoryEngineState,
    facts_of: Any,
    used: dict[str, int],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The worker's disbursements on `state`, and decide's records on what the store held."""
    event = lender_event(ROOMY)

    async def main():
        worker = memory_worker(state=state)
        await process_lender_configs(worker.configs, messages("greencredit.lender-config", [event]))
        result = await process_applications(worker.applications, messages(APPLICATIONS, apps), NOW)
        [document] = (await state.configs([TENANT])).values()
        seen = decoded(apps)
        faces = FaceChecker(None, MemoryFaceBlacklist(), SETTINGS.face_image_max_bytes)
        facts = facts_of(seen, await gather_facts(seen, MemoryFeatureStore(), faces, document))
        expected = decide(seen, facts, lenders(document, used), ApplicationScorer(BP))
        return result, records_of(seen, expected)

    result, (decisions, disbursements) = asyncio.run(main())
    worker = [o.record for o in result.outputs if o.topic == "greencredit.disbursements"]
    assert [o.record for o in result.outputs if o.topic == "greencredit.decisions"] == decisions
    return worker, disbursements, decisions


def test_a_funder_filled_by_another_worker_is_not_used() -> None:
    """Usage read before another worker filled `green`: its reservations fail, routed again."""
    apps = batch(30)
    state = StaleUsage()
    full = 90_000_000
    _reserve(state, "green", "app-elsewhere", full)
    worker, expected, _ = _worker_and_decide(apps, state, lambda _, f: f, {"green": full})
    assert worker == expected
    assert state.reads >= 2 and worker  # the usage was read again
    assert {d["funder_id"] for d in worker} == {"grey"}
    assert state.funder_used[(TENANT, "green")] == full  # nothing more reserved there
    assert state.funder_used[(TENANT, "grey")] == sum(d["amount_minor"] for d in worker)


def test_a_redelivered_application_keeps_the_funder_it_holds() -> None:
    """A funder reserved by an earlier delivery is kept, and its capacity not taken twice."""
    apps = batch(30)
    seen = decoded(apps)
    facts = asyncio.run(
        gather_facts(seen, MemoryFeatureStore(), FaceChecker(None, MemoryFaceBlacklist(), 1024))
    )
    first = decide(seen, facts, lenders(lender_document(ROOMY)), ApplicationScorer(BP))
    i = next(k for k, d in enumerate(first) if d.funder_id == "green")
    held_app, amount = seen[i]["application_id"], seen[i]["requested_amount_minor"]
    state = MemoryEngineState()
    _reserve(state, "grey", held_app, amount)

    def holding(_, gathered):
        return [replace(f, held_funder="grey") if k == i else f for k, f in enumerate(gathered)]

    worker, expected, _ = _worker_and_decide(apps, state, holding, {"grey": amount})
    assert worker == expected
    [mine] = [d for d in worker if d["application_id"] == held_app]
    assert mine["funder_id"] == "grey"
    assert state.funder_used[(TENANT, "green")] + state.funder_used[(TENANT, "grey")] == sum(
        d["amount_minor"] for d in worker
    )


def _decide_one_by_one(
    apps: list[dict[str, Any]], facts: list[ApplicationFacts], document: dict[str, Any] | None
) -> list[Decision]:
    scorer, used, out = ApplicationScorer(BP), {}, []
    for app, fact in zip(apps, facts, strict=True):
        [decision] = decide([app], [fact], lenders(document, used), scorer)
        if decision.funder_id is not None:  # the capacity the earlier batch reserved
            used[decision.funder_id] = (
                used.get(decision.funder_id, 0) + app["requested_amount_minor"]
            )
        out.append(decision)
    return out


applications_strategy = st.lists(
    st.tuples(
        st.sampled_from(LOAN_PURPOSES),
        st.integers(1, 60).map(lambda k: k * 100_000),
        st.integers(0, 3),  # device
        st.integers(0, 180),  # minutes after T
        st.integers(3, 72),  # term
        st.booleans(),  # the feature store answered
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=applications_strategy, funded=st.booleans())
def test_a_batch_of_n_decides_what_n_batches_of_one_decide(rows, funded) -> None:
    apps = decoded(
        [
            application(
                700 + i,
                tenant_id=TENANT,
                purpose=purpose,
                requested_amount_minor=amount,
                device_id=f"dev-{device}",
                term_months=term,
                occurred_at=(T + timedelta(minutes=minute)).isoformat(),
            )
            for i, (purpose, amount, device, minute, term, _) in enumerate(rows)
        ]
    )
    document = lender_document(FUNDERS if funded else None)
    facts = asyncio.run(
        gather_facts(apps, MemoryFeatureStore(), FaceChecker(None, MemoryFaceBlacklist(), 1024))
    )
    # Redis down for some: no velocity, so no context features for those rows.
    facts = [f if row[5] else ApplicationFacts(None) for f, row in zip(facts, rows, strict=True)]
    together = decide(apps, facts, lenders(document), ApplicationScorer(BP))
    assert together == _decide_one_by_one(apps, facts, document)


def test_greencredit_score_replays_the_recorded_decisions(tmp_path: Path, embedder) -> None:
    """The worker's records, replayed offline from the records alone, come out the same."""
    apps = batch(20)
    event = lender_event()

    async def main():
        worker = memory_worker(embedder)
        await process_lender_configs(worker.configs, messages("greencredit.lender-config", [event]))
        return await process_applications(worker.applications, messages(APPLICATIONS, apps), NOW)

    result = asyncio.run(main())
    recorded = [o.record for o in result.outputs if o.topic == "greencredit.decisions"]
    source, replay, out = tmp_path / "apps.jsonl", tmp_path / "recorded.jsonl", tmp_path / "out"
    source.write_bytes(b"\n".join(orjson.dumps(to_json_form(None, a)) for a in decoded(apps)))
    replay.write_bytes(b"\n".join(orjson.dumps(to_json_form(None, r)) for r in recorded))
    config, state = tmp_path / "config.json", tmp_path / "lr.json"
    config.write_bytes(orjson.dumps(lender_document()))
    state.write_bytes(orjson.dumps(BOOTSTRAP))
    run = subprocess.run(
        [sys.executable, "-m", "greencredit", "score", "--in", str(source), "--out", str(out),
         "--config", str(config), "--lr-state", str(state), "--replay", str(replay)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["replayed"] == summary["reproduced"] == len(recorded) == len(apps)
    replayed = [json.loads(line) for line in out.read_text().splitlines()]
    expected = [json.loads(orjson.dumps(to_json_form(None, r))) for r in recorded]
    for mine, theirs in zip(replayed, expected, strict=True):
        mine.pop("occurred_at"), theirs.pop("occurred_at")  # when it was decided
        assert mine == theirs


def test_replay_facts_recover_the_context() -> None:
    apps = decoded(batch(12))
    facts = asyncio.run(
        gather_facts(apps, MemoryFeatureStore(), FaceChecker(None, MemoryFaceBlacklist(), 1024))
    )
    decisions = decide(apps, facts, lenders(lender_document()), ApplicationScorer(BP))
    records, _ = records_of(apps, decisions)
    replays = [replay_facts(r) for r in records]
    again = decide(apps, replays, lenders(lender_document(None)), ApplicationScorer(BP))
    # Without the lender's funders: the recorded flags (FUNDING_UNAVAILABLE) still decide.
    assert [d.scored.result for d in again] == [d.scored.result for d in decisions]
    assert [d.context.flags for d in again] == [d.context.flags for d in decisions]
