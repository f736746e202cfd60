"""The face blacklist against the session's real redis-server.

Each test uses its own key prefix (the server is shared) and its own client, opened and
closed inside ``asyncio.run`` (pytest-asyncio is not installed).
"""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np
import pytest
import redis
from redis.asyncio import Redis

from greencredit.infra.face_blacklist import (
    DimensionMismatchError,
    FaceBlacklist,
    normalise_embeddings,
)

R = TypeVar("R")
D = 32


def run(stack, body: Callable[[FaceBlacklist, Redis], Awaitable[R]]) -> R:
    async def main() -> R:
        redis = Redis.from_url(stack.redis)
        try:
            return await body(FaceBlacklist(redis, prefix=f"gc-test-{uuid.uuid4().hex}:"), redis)
        finally:
            await redis.aclose()

    return asyncio.run(main())


def unit_rows(n: int, dim: int = D, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return normalise_embeddings(rows)


def test_add_list_remove(stack) -> None:
    vectors = unit_rows(3)

    async def body(bl: FaceBlacklist, redis: Redis) -> None:
        ids = [await bl.add(v, "FRAUD_RING", "analyst-7", "face-v1") for v in vectors]
        assert all(i.startswith("bl-") and len(i) == 35 for i in ids)
        assert await bl.version() == 3

        entries = await bl.list()
        assert [e.entry_id for e in entries] == ids  # oldest first
        first = entries[0]
        assert (first.dim, first.reason_code, first.added_by, first.model_version) == (
            D,
            "FRAUD_RING",
            "analyst-7",
            "face-v1",
        )
        assert first.added_at.tzinfo is not None
        assert abs((datetime.now(UTC) - first.added_at).total_seconds()) < 60
        assert [e.entry_id for e in await bl.list(limit=2, cursor=1)] == ids[1:]

        stored = await redis.hgetall(f"{bl.prefix}face:bl:{ids[0]}")
        assert set(stored) == {
            b"embedding",
            b"dim",
            b"reason_code",
            b"added_by",
            b"added_at",
            b"model_version",
        }
        np.testing.assert_allclose(
            np.frombuffer(stored[b"embedding"], "<f4"), vectors[0], atol=1e-6
        )

        assert await bl.remove(ids[1], "analyst-9") is True
        assert await bl.remove(ids[1], "analyst-9") is False  # already gone: no bump
        assert await bl.version() == 4
        assert [e.entry_id for e in await bl.list()] == [ids[0], ids[2]]
        assert not await redis.exists(f"{bl.prefix}face:bl:{ids[1]}")

        with pytest.raises(DimensionMismatchError):
            await bl.add(unit_rows(1, dim=D * 2)[0], "FRAUD_RING", "analyst-7", "face-v1")
        with pytest.raises(ValueError):
            await bl.add(vectors[0], "free text with spaces", "analyst-7", "face-v1")
        assert await bl.count() == 2

    run(stack, body)


def test_audit_records_actions_without_embeddings(stack) -> None:
    async def body(bl: FaceBlacklist, redis: Redis) -> None:
        entry_id = await bl.add(unit_rows(1)[0], "SYNTHETIC_ID", "analyst-1", "face-v1")
        assert await bl.remove(entry_id, "analyst-2")
        records = await bl.audit()
        assert [(r["action"], r["entry_id"], r["actor"], r["reason_code"]) for r in records] == [
            ("remove", entry_id, "analyst-2", "SYNTHETIC_ID"),
            ("add", entry_id, "analyst-1", "SYNTHETIC_ID"),
        ]
        assert all(
            set(r) == {"id", "action", "entry_id", "actor", "at", "reason_code"} for r in records
        )
        assert all(datetime.fromisoformat(r["at"]).tzinfo is not None for r in records)
        assert len(await bl.audit(limit=1)) == 1
        raw = await redis.xrange(f"{bl.prefix}face:bl:audit")
        assert all(b"embedding" not in fields for _, fields in raw)

    run(stack, body)


def test_matcher_reloads_only_when_the_version_moves(stack) -> None:
    vectors = unit_rows(4, seed=1)

    async def body(bl: FaceBlacklist, redis: Redis) -> None:
        empty = await bl.matcher(threshold=0.9)
        assert len(empty) == 0
        assert empty.best_match(vectors[:1]) == [None]

        ids = [await bl.add(v, "FRAUD_RING", "analyst-1", "face-v1") for v in vectors[:3]]
        first = await bl.matcher(threshold=0.9)
        assert bl.loads == 2
        again = await bl.matcher(threshold=0.9)
        assert again is first and bl.loads == 2  # unchanged version: no reload
        other_threshold = await bl.matcher(threshold=0.5)
        assert other_threshold.matrix is first.matrix and bl.loads == 2

        (match,) = first.best_match(vectors[1:2])
        assert match is not None and match.entry_id == ids[1]
        assert match.similarity == pytest.approx(1.0, abs=1e-5)
        assert first.best_match(vectors[3:4]) == [None]

        new_id = await bl.add(vectors[3], "FRAUD_RING", "analyst-1", "face-v1")
        after_add = await bl.matcher(threshold=0.9)
        assert bl.loads == 3 and len(after_add) == 4
        assert after_add.best_match(vectors[3:4])[0].entry_id == new_id  # type: ignore[union-attr]

        await bl.remove(ids[1], "analyst-2")
        after_remove = await bl.matcher(threshold=0.9)
        assert bl.loads == 4 and len(after_remove) == 3
        assert after_remove.best_match(vectors[1:2]) == [None]
        assert await bl.remove(ids[1], "analyst-2") is False
        assert await bl.matcher(threshold=0.9) is after_remove and bl.loads == 4

    run(stack, body)


def test_two_thousand_entries_load_into_one_matrix(stack) -> None:
    vectors = unit_rows(2_000, seed=2)

    async def body(bl: FaceBlacklist, redis: Redis) -> None:
        ids: list[str] = []
        for start in range(0, len(vectors), 50):  # concurrent, within the pool's connections
            ids += await asyncio.gather(
                *(
                    bl.add(v, "FRAUD_RING", "bulk-import", "face-v1")
                    for v in vectors[start : start + 50]
                )
            )
        matcher = await bl.matcher(threshold=0.99)
        assert len(matcher) == 2_000
        assert matcher.matrix.shape == (2_000, D)
        assert matcher.matrix.dtype == np.float32 and matcher.matrix.flags.c_contiguous
        by_id = dict(zip(ids, vectors, strict=True))
        expected = np.stack([by_id[i] for i in matcher.entry_ids])
        np.testing.assert_allclose(matcher.matrix, expected, atol=1e-6)  # renormalised on add
        matches = matcher.best_match(vectors)
        assert [m.entry_id if m else None for m in matches] == list(ids)

    run(stack, body)


def test_cli_add_list_audit_remove(stack, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from greencredit.cli import face_blacklist as cli
    from greencredit.settings import get_settings

    # A private prefix, so the shared (possibly external) Redis' real blacklist is untouched.
    prefix = f"gc-test-{uuid.uuid4().hex[:16]}:"
    monkeypatch.setenv("REDIS_KEY_PREFIX", prefix)  # the CLI uses the engine's prefix
    monkeypatch.setenv("REDIS_URL", stack.redis)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", stack.kafka)
    get_settings.cache_clear()
    try:
        embedding_file = tmp_path / "face.npy"
        np.save(embedding_file, unit_rows(1)[0])
        runner = CliRunner()
        invoke = functools.partial(runner.invoke, cli.blacklist_app)

        added = invoke(
            ["add", "--embedding-file", str(embedding_file), "--reason", "FRAUD", "--actor", "a-1"]
        )
        assert added.exit_code == 0, added.output
        entry_id = json.loads(added.stdout)["entry_id"]
        listed = json.loads(invoke(["list", "--limit", "5"]).stdout)
        assert [e["entry_id"] for e in listed] == [entry_id]
        assert "embedding" not in listed[0]
        removed = invoke(["remove", entry_id, "--actor", "a-2"])
        assert removed.exit_code == 0 and json.loads(removed.stdout)["removed"] is True
        assert invoke(["remove", entry_id, "--actor", "a-2"]).exit_code == 1
        audit = json.loads(invoke(["audit"]).stdout)
        assert [r["action"] for r in audit] == ["remove", "add"]
        # Everything was written under the prefix Settings give.
        client = redis.Redis.from_url(stack.redis)
        try:
            assert client.exists(f"{prefix}face:bl:audit")
        finally:
            client.close()

        neither = invoke(["add", "--reason", "FRAUD", "--actor", "a-1"])
        assert neither.exit_code == 2 and "exactly one" in neither.stderr
        np.save(embedding_file, unit_rows(1, dim=D + 1)[0])
        wrong_dim = invoke(
            ["add", "--embedding-file", str(embedding_file), "--reason", "FRAUD", "--actor", "a-1"]
        )
        assert wrong_dim.exit_code == 2 and "dimension" in wrong_dim.stderr
    finally:
        get_settings.cache_clear()
