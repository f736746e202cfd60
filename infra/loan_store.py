"""Per-loan state in Redis with compare-and-set, the open-loan index and customer contacts.

Several agents touch one loan (repayments, servicing events, the daily check), possibly
on different workers, so every write is a compare-and-set on the state's `version`: a
writer that lost the race re-reads and re-applies its events. The state is JSON (never
pickle) and carries no PII; customer contacts are kept masked.

    key                              type    content                               TTL
    gc:loan:{loan_id}                string  LoanState JSON (with version)         term + 2 y
    gc:loans:open:{tenant}           zset    loan_id -> opened (epoch days)        refreshed
    gc:customer:{customer_id}        hash    phone/email masked + pseudonyms       400 d
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import orjson
from redis.asyncio import Redis

__all__ = ["LoanOpening", "LoanStore"]

_CAS = """
local current = redis.call('GET', KEYS[1])
if current then
  local version = cjson.decode(current)['version']
  if tonumber(version) ~= tonumber(ARGV[1]) then return 0 end
elseif tonumber(ARGV[1]) ~= -1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
_LOAN_TTL_SLACK = timedelta(days=730)
_INDEX_TTL = int(timedelta(days=400).total_seconds())
_CONTACT_TTL = int(timedelta(days=400).total_seconds())


@dataclass(frozen=True)
class LoanOpening:
    """A loan to open: its first state (JSON-able, version 0) and where it is indexed."""

    tenant_id: str
    loan_id: str
    state: Mapping[str, Any]
    opened_day: int  # epoch days: the open-loan index orders by it
    term_days: int


def _loan_ttl(term_days: int) -> int:
    return int((timedelta(days=term_days) + _LOAN_TTL_SLACK).total_seconds())


class LoanStore:
    """Async access to loan states; one instance per worker."""

    def __init__(self, client: Redis, prefix: str = "gc:") -> None:
        self.client = client
        self.prefix = prefix
        self._cas = client.register_script(_CAS)

    def _loan_key(self, loan_id: str) -> str:
        return f"{self.prefix}loan:{loan_id}"

    def _index_key(self, tenant_id: str) -> str:
        return f"{self.prefix}loans:open:{tenant_id}"

    async def load(self, loan_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stored states of these loans (missing ones are absent)."""
        if not loan_ids:
            return {}
        values = await self.client.mget([self._loan_key(i) for i in loan_ids])
        return {i: orjson.loads(v) for i, v in zip(loan_ids, values, strict=True) if v}

    async def compare_and_set(
        self, updates: Sequence[tuple[str, int, Mapping[str, Any], int]]
    ) -> list[bool]:
        """Write (loan_id, expected_version, state, term_days) where the version still matches.

        expected_version -1 means "only if the loan does not exist yet" (opening).
        One round trip for the batch; False where another writer got there first.
        """
        if not updates:
            return []
        pipe = self.client.pipeline(transaction=False)
        for loan_id, expected, state, term_days in updates:
            ttl = _loan_ttl(term_days)
            # Queued on the pipeline (EVALSHA, with a SCRIPT LOAD on first use).
            await self._cas(
                keys=[self._loan_key(loan_id)],
                args=[expected, orjson.dumps(state), ttl],
                client=pipe,
            )
        return [bool(r) for r in await pipe.execute()]

    async def open(self, loans: Sequence[LoanOpening]) -> None:
        """Open loans that do not exist yet and index them, in one round trip.

        Idempotent: a loan opened before (by an earlier delivery) keeps its state, however
        far it has moved since; indexing it again is harmless.
        """
        if not loans:
            return
        pipe = self.client.pipeline(transaction=False)
        for loan in loans:
            pipe.set(
                self._loan_key(loan.loan_id),
                orjson.dumps(loan.state),
                nx=True,
                ex=_loan_ttl(loan.term_days),
            )
            pipe.zadd(self._index_key(loan.tenant_id), {loan.loan_id: loan.opened_day}, nx=True)
            pipe.expire(self._index_key(loan.tenant_id), _INDEX_TTL)
        await pipe.execute()

    async def index_open(self, loans: Iterable[tuple[str, str, int]]) -> None:
        """Add (tenant_id, loan_id, opened epoch day) to the open-loan index."""
        pipe = self.client.pipeline(transaction=False)
        for tenant_id, loan_id, opened in loans:
            pipe.zadd(self._index_key(tenant_id), {loan_id: opened})
            pipe.expire(self._index_key(tenant_id), _INDEX_TTL)
        await pipe.execute()

    async def close(self, loans: Iterable[tuple[str, str]]) -> None:
        """Remove closed (tenant_id, loan_id) from the open-loan index."""
        pipe = self.client.pipeline(transaction=False)
        for tenant_id, loan_id in loans:
            pipe.zrem(self._index_key(tenant_id), loan_id)
        await pipe.execute()

    async def tenants_with_open_loans(self) -> list[str]:
        """Tenants that have an open-loan index."""
        tenants = []
        async for key in self.client.scan_iter(match=self._index_key("*"), count=500):
            name = key.decode() if isinstance(key, bytes) else str(key)
            tenants.append(name.rsplit(":", 1)[-1])
        return sorted(tenants)

    async def open_loans(self, tenant_id: str, start: int, count: int) -> list[str]:
        """A page of a tenant's open loans, oldest first."""
        members = await self.client.zrange(self._index_key(tenant_id), start, start + count - 1)
        return [m.decode() if isinstance(m, bytes) else str(m) for m in members]

    async def put_contacts(self, contacts: Mapping[str, Mapping[str, str]]) -> None:
        """Store masked contact fields per customer (merging with what is there)."""
        if not contacts:
            return
        pipe = self.client.pipeline(transaction=False)
        for customer_id, fields in contacts.items():
            key = f"{self.prefix}customer:{customer_id}"
            pipe.hset(key, mapping=cast(Any, dict(fields)))
            pipe.expire(key, _CONTACT_TTL)
        await pipe.execute()

    async def contacts(self, customer_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """Masked contact fields per customer (customers without any are absent)."""
        ids = list(dict.fromkeys(customer_ids))
        if not ids:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for customer_id in ids:
            pipe.hgetall(f"{self.prefix}customer:{customer_id}")
        replies = await pipe.execute()
        out = {}
        for customer_id, reply in zip(ids, replies, strict=True):
            if reply:
                out[customer_id] = {
                    (k.decode() if isinstance(k, bytes) else k): (
                        v.decode() if isinstance(v, bytes) else v
                    )
                    for k, v in reply.items()
                }
        return out
