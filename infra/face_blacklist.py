"""The face blacklist: L2-normalised face embeddings in Redis, matched in memory with numpy.

No images and no PII are stored: only the embedding vector and who/why/when. Every add or
remove bumps a version counter, so workers keep one contiguous float32 matrix in memory and
reload it only when that counter moved (one GET per check). The audit stream never holds
an embedding.

    key                          type    content                                       TTL
    gc:face:bl:{entry_id}        hash    embedding (float32 LE bytes), dim, reason_code, none
                                         added_by, added_at (ISO UTC), model_version
    gc:face:bl:index             zset    entry_id -> blacklist version when added      none
    gc:face:bl:dim               string  the blacklist's embedding dimension          none
    gc:face:bl:version           string  counter, INCR on every add/remove            none
    gc:face:bl:audit             stream  action, entry_id, actor, at, reason_code      MAXLEN ~

The index is a sorted set (a set ordered by insertion time) so `list` pages are stable.
The dimension is fixed by the first entry: vectors of another dimension cannot be compared.
"""

from __future__ import annotations

import asyncio
import builtins
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
from redis.asyncio import Redis

__all__ = [
    "AUDIT_MAXLEN",
    "BlacklistMatcher",
    "DimensionMismatchError",
    "EntryInfo",
    "FaceBlacklist",
    "Match",
    "normalise_embeddings",
]

AUDIT_MAXLEN = 100_000
_LOAD_CHUNK = 1_000  # HGETs per pipeline round trip while loading the matrix
_EMBEDDING_DTYPE = np.dtype("<f4")
_TOKEN = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")  # codes and ids, never free text (no PII)

# KEYS: entry, index, dim, version, audit. ARGV: entry_id, embedding, dim, reason_code,
# actor, added_at, model_version, audit maxlen.
# Returns the new version, or {err} when the dimension does not match the blacklist's.
_ADD = """
local dim = redis.call('GET', KEYS[3])
if dim and dim ~= ARGV[3] then
  return redis.error_reply('DIM ' .. dim)
end
redis.call('SET', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[1], 'embedding', ARGV[2], 'dim', ARGV[3], 'reason_code', ARGV[4],
  'added_by', ARGV[5], 'added_at', ARGV[6], 'model_version', ARGV[7])
local version = redis.call('INCR', KEYS[4])
-- Scored by the version, not the clock: two adds in one millisecond keep their order.
redis.call('ZADD', KEYS[2], version, ARGV[1])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[8], '*', 'action', 'add', 'entry_id', ARGV[1],
  'actor', ARGV[5], 'at', ARGV[6], 'reason_code', ARGV[4])
return version
"""

# KEYS: entry, index, version, audit. ARGV: entry_id, actor, at, audit maxlen.
# Returns 0 when the entry does not exist (nothing changes, no version bump).
_REMOVE = """
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
local reason = redis.call('HGET', KEYS[1], 'reason_code') or ''
redis.call('DEL', KEYS[1])
redis.call('INCR', KEYS[3])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'action', 'remove', 'entry_id', ARGV[1],
  'actor', ARGV[2], 'at', ARGV[3], 'reason_code', reason)
return 1
"""


class DimensionMismatchError(ValueError):
    """Embeddings of a dimension other than the blacklist's."""


@dataclass(frozen=True)
class EntryInfo:
    """One blacklist entry without its embedding."""

    entry_id: str
    dim: int
    reason_code: str
    added_by: str
    added_at: datetime
    model_version: str


@dataclass(frozen=True)
class Match:
    """The closest blacklist entry of a query, at or above the threshold."""

    entry_id: str
    similarity: float


def normalise_embeddings(embeddings: np.ndarray, dim: int | None = None) -> np.ndarray:
    """[n, D] float32 rows scaled to unit length; a single [D] vector becomes [1, D].

    Upstream embedders already normalise; renormalising here is cheap and keeps cosine
    similarity a plain dot product even for vectors that went through a lossy hop.
    """
    matrix = np.asarray(embeddings, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise ValueError(f"embeddings must be [n, D] with D > 0, got shape {matrix.shape}")
    if dim is not None and matrix.shape[1] != dim:
        raise DimensionMismatchError(
            f"embedding dimension {matrix.shape[1]} does not match the blacklist's {dim}"
        )
    if not np.isfinite(matrix).all():
        raise ValueError("embeddings contain NaN or infinite values")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("embeddings contain an all-zero vector")
    return matrix / norms


class BlacklistMatcher:
    """Pure-numpy nearest entry by cosine similarity over an in-memory snapshot."""

    def __init__(
        self,
        entry_ids: Sequence[str],
        matrix: np.ndarray,
        threshold: float,
        dim: int | None = None,
        version: int = 0,
    ) -> None:
        """`matrix` is [N, D] float32 with unit rows (row i is `entry_ids[i]`)."""
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be a cosine similarity in [-1, 1], got {threshold}")
        if matrix.ndim != 2 or matrix.shape[0] != len(entry_ids):
            raise ValueError(f"matrix shape {matrix.shape} does not fit {len(entry_ids)} entries")
        if dim is not None and len(entry_ids) and matrix.shape[1] != dim:
            raise DimensionMismatchError(f"matrix has D={matrix.shape[1]}, expected {dim}")
        self.entry_ids = list(entry_ids)
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self.threshold = float(threshold)
        self.dim = dim if dim is not None else (matrix.shape[1] if len(entry_ids) else None)
        self.version = version

    def __len__(self) -> int:
        return len(self.entry_ids)

    def with_threshold(self, threshold: float) -> BlacklistMatcher:
        """The same snapshot (matrix shared, not copied) with another threshold."""
        return BlacklistMatcher(self.entry_ids, self.matrix, threshold, self.dim, self.version)

    def best_match(self, embeddings: np.ndarray) -> list[Match | None]:
        """Per query row: the most similar entry if its similarity >= threshold, else None."""
        queries = normalise_embeddings(embeddings, self.dim)
        if not self.entry_ids:
            return [None] * len(queries)
        similarities = queries @ self.matrix.T  # [n, N]: cosine, rows are unit vectors
        best = np.argmax(similarities, axis=1)
        scores = similarities[np.arange(len(queries)), best]
        return [
            Match(self.entry_ids[int(i)], float(s)) if s >= self.threshold else None
            for i, s in zip(best, scores, strict=True)
        ]


@dataclass(frozen=True)
class _Snapshot:
    version: int
    matcher: BlacklistMatcher


class FaceBlacklist:
    """Async access to the blacklist; one instance per worker (it caches the matrix)."""

    def __init__(self, client: Redis, prefix: str = "gc:") -> None:
        self.client = client
        self.prefix = prefix
        self._base = f"{prefix}face:bl:"
        self._add_script = client.register_script(_ADD)
        self._remove_script = client.register_script(_REMOVE)
        self._snapshot: _Snapshot | None = None
        self._load_lock = asyncio.Lock()
        self.loads = 0  # matrix (re)loads so far; the cache is observable in tests and metrics

    def _entry_key(self, entry_id: str) -> str:
        return f"{self._base}{entry_id}"

    @property
    def _index_key(self) -> str:
        return f"{self._base}index"

    @property
    def _dim_key(self) -> str:
        return f"{self._base}dim"

    @property
    def _version_key(self) -> str:
        return f"{self._base}version"

    @property
    def _audit_key(self) -> str:
        return f"{self._base}audit"

    async def add(
        self, embedding: np.ndarray, reason_code: str, actor: str, model_version: str
    ) -> str:
        """Store one embedding (renormalised); returns its new entry id `bl-<uuid4 hex>`."""
        for name, value in (("reason_code", reason_code), ("actor", actor)):
            _check_token(name, value)
        _check_token("model_version", model_version)
        vector = normalise_embeddings(embedding)
        if len(vector) != 1:
            raise ValueError(f"add takes one embedding, got {len(vector)}")
        dim = vector.shape[1]
        entry_id = f"bl-{uuid.uuid4().hex}"
        now = datetime.now(UTC)
        try:
            await self._add_script(
                keys=[
                    self._entry_key(entry_id),
                    self._index_key,
                    self._dim_key,
                    self._version_key,
                    self._audit_key,
                ],
                args=[
                    entry_id,
                    vector[0].astype(_EMBEDDING_DTYPE).tobytes(),
                    dim,
                    reason_code,
                    actor,
                    now.isoformat(),
                    model_version,
                    AUDIT_MAXLEN,
                ],
            )
        except Exception as exc:
            message = str(exc)
            if "DIM " in message:
                expected = message.rsplit("DIM ", 1)[1].strip()
                raise DimensionMismatchError(
                    f"embedding dimension {dim} does not match the blacklist's {expected}"
                ) from None
            raise
        return entry_id

    async def remove(self, entry_id: str, actor: str) -> bool:
        """Delete an entry; False when it does not exist (then nothing is audited)."""
        _check_token("actor", actor)
        removed = await self._remove_script(
            keys=[self._entry_key(entry_id), self._index_key, self._version_key, self._audit_key],
            args=[entry_id, actor, datetime.now(UTC).isoformat(), AUDIT_MAXLEN],
        )
        return bool(removed)

    async def list(self, limit: int = 100, cursor: int = 0) -> list[EntryInfo]:
        """Entries oldest first, `limit` from offset `cursor` (next page: cursor + limit)."""
        if limit <= 0 or cursor < 0:
            raise ValueError("limit must be > 0 and cursor >= 0")
        ids = await self._entry_ids(cursor, cursor + limit - 1)
        pipe = self.client.pipeline(transaction=False)
        for entry_id in ids:
            pipe.hmget(
                self._entry_key(entry_id),
                ["dim", "reason_code", "added_by", "added_at", "model_version"],
            )
        rows = await pipe.execute() if ids else []
        out = []
        for entry_id, row in zip(ids, rows, strict=True):
            dim, reason, added_by, added_at, model_version = row
            if dim is None:  # removed between the two reads
                continue
            out.append(
                EntryInfo(
                    entry_id=entry_id,
                    dim=int(dim),
                    reason_code=_text(reason),
                    added_by=_text(added_by),
                    added_at=datetime.fromisoformat(_text(added_at)),
                    model_version=_text(model_version),
                )
            )
        return out

    async def _entry_ids(self, start: int, stop: int) -> builtins.list[str]:
        raw = cast(Sequence[bytes | str], await self.client.zrange(self._index_key, start, stop))
        return [_text(i) for i in raw]

    async def count(self) -> int:
        """Number of entries."""
        return int(await self.client.zcard(self._index_key))

    async def audit(self, limit: int = 100) -> builtins.list[dict[str, Any]]:
        """The latest audit records, newest first, each with its stream id."""
        records = cast(Any, await self.client.xrevrange(self._audit_key, count=limit))
        return [
            {"id": _text(stream_id), **{_text(k): _text(v) for k, v in fields.items()}}
            for stream_id, fields in records
        ]

    async def version(self) -> int:
        """The counter bumped by every add/remove (0 for a never-used blacklist)."""
        return int(await self.client.get(self._version_key) or 0)

    async def matcher(self, threshold: float) -> BlacklistMatcher:
        """A matcher over the current entries; reloads the matrix only if the version moved."""
        version = await self.version()
        snapshot = self._snapshot
        if snapshot is None or snapshot.version != version:
            async with self._load_lock:
                snapshot = self._snapshot
                if snapshot is None or snapshot.version != version:
                    snapshot = _Snapshot(version, await self._load(version, threshold))
                    self._snapshot = snapshot
        if snapshot.matcher.threshold != threshold:
            return snapshot.matcher.with_threshold(threshold)
        return snapshot.matcher

    async def _load(self, version: int, threshold: float) -> BlacklistMatcher:
        # The version was read before the data: a change during the load bumps it past
        # `version`, so the next check reloads. Entries removed meanwhile read as None.
        ids = await self._entry_ids(0, -1)
        dim_raw = await self.client.get(self._dim_key)
        dim = int(dim_raw) if dim_raw is not None else None
        kept: builtins.list[str] = []
        blobs: builtins.list[bytes] = []
        for start in range(0, len(ids), _LOAD_CHUNK):
            chunk = ids[start : start + _LOAD_CHUNK]
            pipe = self.client.pipeline(transaction=False)
            for entry_id in chunk:
                pipe.hget(self._entry_key(entry_id), "embedding")
            for entry_id, blob in zip(chunk, await pipe.execute(), strict=True):
                if blob is None:
                    continue
                if dim is None or len(blob) != dim * _EMBEDDING_DTYPE.itemsize:
                    raise DimensionMismatchError(
                        f"entry {entry_id} holds {len(blob)} bytes, expected {dim} float32"
                    )
                kept.append(entry_id)
                blobs.append(blob)
        matrix = np.frombuffer(b"".join(blobs), dtype=_EMBEDDING_DTYPE).astype(np.float32)
        matrix = matrix.reshape(len(kept), dim or 0)
        self.loads += 1
        return BlacklistMatcher(kept, matrix, threshold, dim, version)


def _check_token(name: str, value: str) -> None:
    if not _TOKEN.fullmatch(value):
        # The value is not echoed: a mistyped field could hold a name or a phone number.
        raise ValueError(f"{name} must be 1-128 characters of [A-Za-z0-9_.:@-]")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
