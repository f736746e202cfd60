"""The console's case store on PostgreSQL: idempotent ingestion, order, labels, filters, scope."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from greencredit.console.cases import CaseLabel, case_from_alert, case_from_review
from greencredit.console.db import connect, migrate
from greencredit.console.store import CaseConflict, CaseStore, NoSuchCase
from tests.conftest import fresh_database
from tests.unit.test_console_cases import T0, alert, review


@pytest.fixture(scope="module")
def db_url(postgres: str) -> str:
    url = fresh_database(postgres)

    async def setup() -> None:
        engine = connect(url)
        await migrate(engine)
        await migrate(engine)  # idempotent: a second console start changes nothing
        await engine.dispose()

    asyncio.run(setup())
    return url


def with_store(db_url, test) -> None:
    async def main() -> None:
        engine = connect(db_url)
        try:
            await test(CaseStore(engine))
        finally:
            await engine.dispose()

    asyncio.run(main())


def _label(name: str = "FRAUD", analyst: str = "analyst-1") -> CaseLabel:
    return CaseLabel(name, analyst, T0, str(uuid.uuid4()))


def _tenant() -> str:
    return f"bank-{uuid.uuid4().hex[:8]}"


def test_a_redelivered_event_is_one_case_with_one_opening(db_url):
    async def test(store: CaseStore) -> None:
        tenant = _tenant()
        event = alert(int(uuid.uuid4().int % 10**9), tenant_id=tenant)
        assert await store.ingest_case(case_from_alert(event))
        assert not await store.ingest_case(case_from_alert(event))
        rows = await store.query([tenant])
        assert [r.case_id for r in rows] == [event["alert_id"]]
        assert [e["action"] for e in await store.timeline(event["alert_id"])] == ["opened"]

    with_store(db_url, test)


def test_cases_come_newest_first_whatever_the_arrival_order(db_url):
    async def test(store: CaseStore) -> None:
        tenant, base = _tenant(), int(uuid.uuid4().int % 10**8) * 10
        for n in (3, 1, 4, 0, 2):
            await store.ingest_case(case_from_alert(alert(base + n, minutes=n, tenant_id=tenant)))
        rows = await store.query([tenant])
        assert [r.case_id for r in rows] == [f"alert-{base + n}" for n in (4, 3, 2, 1, 0)]
        assert len(await store.query([tenant], limit=2)) == 2

    with_store(db_url, test)


def test_labels_first_wins_and_a_label_read_before_its_case_closes_it_on_arrival(db_url):
    async def test(store: CaseStore) -> None:
        tenant, base = _tenant(), int(uuid.uuid4().int % 10**8) * 10
        first = case_from_alert(alert(base + 1, tenant_id=tenant))
        await store.ingest_case(first)
        assert await store.ingest_label(first.case_id, _label("FRAUD", "analyst-1"))
        assert await store.ingest_label(first.case_id, _label("NOT_FRAUD", "analyst-2"))
        row = await store.get(first.case_id, [tenant])
        assert (row.status, row.label, row.labelled_by) == ("closed", "FRAUD", "analyst-1")
        # Keyed by the subject event (no case id), and before the case exists.
        early = case_from_alert(alert(base + 2, tenant_id=tenant))
        label = _label("NOT_FRAUD", "analyst-3")
        assert await store.ingest_label(early.subject_event_id, label)
        assert not await store.ingest_label(early.subject_event_id, label)  # same event id
        await store.ingest_case(early)
        row = await store.get(early.case_id, [tenant])
        assert (row.status, row.resolution, row.labelled_by) == ("closed", "NOT_FRAUD", "analyst-3")

    with_store(db_url, test)


def test_filters_combine_and_reads_are_scoped_to_the_callers_lenders(db_url):
    async def test(store: CaseStore) -> None:
        a, b, base = _tenant(), _tenant(), int(uuid.uuid4().int % 10**8) * 10
        await store.ingest_case(case_from_alert(alert(base + 1, tenant_id=a, severity="CRITICAL")))
        await store.ingest_case(
            case_from_alert(
                alert(
                    base + 2,
                    tenant_id=b,
                    severity="LOW",
                    reasons=[{"code": "DEVICE_FARM", "contribution": 0.5}],
                )
            )
        )
        await store.ingest_case(case_from_review(review(base + 3, tenant_id=a)))
        await store.ingest_label(f"alert-{base + 1}", _label())
        review_id = f"review-app-{base + 3:05d}"
        await store.set_status(review_id, [a], "in_progress", None, "ana")

        async def ids(lenders=(a, b), **filters):
            return sorted(r.case_id for r in await store.query(lenders, **filters))

        assert await ids(lender=a) == [f"alert-{base + 1}", review_id]
        assert await ids(severity="REVIEW") == [review_id]
        assert await ids(typology="DEVICE_FARM") == [f"alert-{base + 2}"]
        assert await ids(status="open") == [f"alert-{base + 2}"]
        assert await ids(status="active") == [f"alert-{base + 2}", review_id]
        assert await ids(owner="ana") == [review_id]
        assert await ids(lender=a, status="closed") == [f"alert-{base + 1}"]
        assert await ids(lenders=(b,), lender=a) == []
        facets = await store.facets([a, b])
        assert facets["lenders"] == sorted([a, b])
        assert "DEVICE_FARM" in facets["typologies"]
        assert await store.counts([a]) == {"open": 0, "in_progress": 1, "closed": 1}
        with pytest.raises(NoSuchCase):
            await store.get(f"alert-{base + 2}", [a])
        with pytest.raises(NoSuchCase):
            await store.comment(f"alert-{base + 2}", [a], "not mine", "ana")
        with pytest.raises(CaseConflict):
            await store.set_status(review_id, [a], "closed", "because", "ana")

    with_store(db_url, test)


def test_postgres_never_runs_as_root(postgres):
    """Under root (as CI) the server runs as the wheel's system user; else as the caller."""
    import os
    import pwd

    import asyncpg

    from greencredit.infra.postgres import PG_SYSTEM_USER

    async def backend_owner() -> str:
        connection = await asyncpg.connect(postgres.replace("postgresql+asyncpg", "postgresql"))
        try:  # the server process serving this connection, while it is open
            pid = int(await connection.fetchval("SELECT pg_backend_pid()"))
            return pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name
        finally:
            await connection.close()

    owner = asyncio.run(backend_owner())
    expected = PG_SYSTEM_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    assert owner == expected != "root"
