"""A worker's engine: its resources on Redis, and the emit step shared by all agents.

Processors get only their part of the resources (see resources.py); what stays here is
what they never touch: the Redis client's lifetime, and sending sealed records and waiting
for the broker's acks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from greencredit.infra.audit_head import last_record_hash
from greencredit.infra.endpoints import resolve_endpoints
from greencredit.infra.stores import RedisStores
from greencredit.models.bp import BpCreditModel
from greencredit.models.face import FaceEmbedder
from greencredit.models.lr_bootstrap import load_bootstrap_lr
from greencredit.models.scoring import ApplicationScorer
from greencredit.settings import Settings
from greencredit.streams.audit import ChainHead
from greencredit.streams.codec import AvroCodec, codec_from_settings
from greencredit.streams.masking import scrub_text
from greencredit.streams.topics import AUDITED_TOPICS

from .batch import Bookkeeping
from .face_check import FaceChecker
from .lender_cache import LenderCaches
from .messages import Decoder, Outgoing
from .resources import Resources
from .retry import Retry
from .sink import Sink

__all__ = ["Engine"]

log = logging.getLogger(__name__)

# Topics whose records carry the tamper-evident chain.
_AUDITED = frozenset(spec.name for spec in AUDITED_TOPICS)


def _load_face_embedder(settings: Settings) -> FaceEmbedder | None:
    """The face embedder (FACE_MODEL_PATH or the shipped one); None disables face checks."""
    try:
        return FaceEmbedder.load(settings.face_model_path)
    except (OSError, ValueError, RuntimeError) as exc:
        # Applications with a face image then go to review (FACE_MODEL_UNAVAILABLE).
        log.error("face embedder unavailable: %s", exc)
        return None


def redis_resources(settings: Settings, client: aioredis.Redis, codec: AvroCodec) -> Resources:
    """The worker's resources on Redis stores, with the models loaded (no network I/O yet)."""
    stores = RedisStores.create(client, settings.redis_key_prefix)
    retry = Retry.from_settings(settings)
    return Resources(
        settings=settings,
        decoder=Decoder(codec),
        retry=retry,
        state=stores.state,
        features=stores.features,
        loans=stores.loans,
        faces=FaceChecker(
            _load_face_embedder(settings),
            stores.blacklist,
            settings.face_image_max_bytes,
            threads=settings.face_check_threads,
        ),
        scorer=ApplicationScorer(BpCreditModel.load()),
        lenders=LenderCaches(
            stores.state, retry, settings.config_refresh_s, load_bootstrap_lr().to_state()
        ),
        pii_key=settings.pii_hmac_key.get_secret_value().encode(),
    )


@dataclass
class Engine:
    """One worker's resources, its Redis client and the emit side (codec, chain heads)."""

    resources: Resources
    codec: AvroCodec
    redis: aioredis.Redis
    kafka_config: dict[str, Any]
    chain: ChainHead = field(default_factory=ChainHead)
    # What recording a batch's outcomes uses, built once (see finish_batch).
    books: Bookkeeping = field(init=False)
    _chain_known: set[tuple[str, int]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.books = Bookkeeping.of(self.resources)

    @classmethod
    def create(cls, settings: Settings) -> Engine:
        """Connect to Redis (lazily) and load the models; no network I/O yet."""
        endpoints = resolve_endpoints(settings)
        password = settings.redis_password.get_secret_value() if settings.redis_password else None
        client = aioredis.Redis.from_url(
            endpoints.redis, password=password, socket_timeout=2.0, socket_connect_timeout=2.0
        )
        codec = codec_from_settings(settings)
        return cls(
            resources=redis_resources(settings, client, codec),
            codec=codec,
            redis=client,
            kafka_config=settings.kafka_client_config(endpoints.kafka),
        )

    async def start(self) -> None:
        """Load the Lua scripts; Redis being down here is not fatal (calls retry later)."""
        try:
            await self.resources.features.load_scripts()
        except RedisError as exc:
            log.warning("redis not reachable at start-up: %s", scrub_text(str(exc)))

    async def emit(self, outputs: Sequence[Outgoing], sink: Sink) -> None:
        """Encode (sealing audited records as they are encoded), produce in order, await acks.

        An output with ``same_as`` re-sends the bytes of that output as they were sealed
        (under its own topic's schema id), so both topics hold the very same record.
        """
        sealed: dict[int, bytes] = {}
        for output in outputs:
            earlier = sealed.get(id(output.same_as)) if output.same_as is not None else None
            if earlier is not None:
                value = self.codec.reheader(output.topic, earlier)
            elif output.same_as is None and output.topic in _AUDITED:
                if output.partition is None:
                    raise ValueError(f"{output.topic} records need an explicit partition")
                head = await self._ensure_chain_head(output.topic, output.partition)
                value, head = self.codec.encode_sealed(
                    output.topic, output.record, head, validate=False
                )
                self.chain.set_head(output.topic, output.partition, head)
                sealed[id(output)] = value
            else:
                record = output.record if output.same_as is None else output.same_as.record
                value = self.codec.encode(output.topic, record, validate=False)
            sink.produce(output.topic, output.key.encode(), value, output.partition)
        if outputs:
            await sink.flush()

    async def _ensure_chain_head(self, topic: str, partition: int) -> str:
        """The partition's chain head; after a (re)start, the last record_hash in Kafka."""
        if (topic, partition) in self._chain_known:
            return self.chain.head(topic, partition)
        head = await asyncio.to_thread(
            last_record_hash, self.kafka_config, topic, partition, self.codec
        )
        self.chain.set_head(topic, partition, head)
        self._chain_known.add((topic, partition))
        return head

    def forget_chain_heads(self) -> None:
        """After a rebalance another worker may have written: re-read heads from Kafka."""
        self._chain_known.clear()

    async def flush(self) -> None:
        """Write done markers still waiting (FeatureStore.mark_done_later)."""
        try:
            await self.resources.features.flush_done()
        except (RedisError, OSError) as exc:
            # Not written: a redelivery processes those events again, with the same output ids.
            log.warning("done markers not written at stop: %s", type(exc).__name__)

    async def close(self) -> None:
        """Flush, then release Redis and the face checker's threads."""
        await self.flush()
        await self.redis.aclose()
        self.resources.faces.close()
