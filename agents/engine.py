"""Per-worker resources and the emit step shared by all agents.

The agents stay thin: they hand a batch of raw messages to a processing function, which
uses this engine for decoding, Redis state (with retries), lender configs, the online
models and, at the end, sending sealed records and waiting for the broker's acks.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from greencredit.infra.audit_head import last_record_hash
from greencredit.infra.endpoints import resolve_endpoints
from greencredit.infra.stores import (
    EngineStateStore,
    FeatureStoreProtocol,
    LoanStoreProtocol,
    RedisStores,
)
from greencredit.models.bp import BpCreditModel
from greencredit.models.face import FaceEmbedder
from greencredit.models.lender_config import LenderConfig
from greencredit.models.lender_view import LenderView, LenderViews
from greencredit.models.lr_bootstrap import load_bootstrap_lr
from greencredit.models.monitoring import ModelMonitor, MonitorConfig, clamp_lr_weight
from greencredit.models.online_lr import OnlineLRConfig, OnlineRiskModel
from greencredit.models.scoring import ApplicationScorer
from greencredit.settings import Settings
from greencredit.streams.audit import ChainHead
from greencredit.streams.codec import AvroCodec, DecodedEvent, codec_from_settings
from greencredit.streams.deadletter import dead_letter_record
from greencredit.streams.errors import CodecError
from greencredit.streams.masking import scrub_text
from greencredit.streams.topics import AUDITED_TOPICS, DEAD_LETTER

from .face_check import FaceChecker
from .sink import Sink

__all__ = ["Engine", "Incoming", "Outgoing", "RedisUnavailable"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Topics whose records carry the tamper-evident chain.
_AUDITED = frozenset(spec.name for spec in AUDITED_TOPICS)
APPLICATION_LR = "application_lr"
TRANSACTION_LR = "transaction_lr"
# Fraud is rare: an untrained transaction model starts near a plausible base rate, not 0.5.
TRANSACTION_LR_PRIOR = 0.02


class RedisUnavailable(RuntimeError):
    """Redis did not answer after the configured retries."""


@dataclass(frozen=True)
class Incoming:
    """One consumed message, before decoding."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class Outgoing:
    """One record to produce; `partition` None lets the key choose."""

    topic: str
    key: str
    record: dict[str, Any]
    partition: int | None = None
    same_as: Outgoing | None = None  # send the record exactly as that output was sealed


def _load_face_embedder(settings: Settings) -> FaceEmbedder | None:
    """The face embedder (FACE_MODEL_PATH or the shipped one); None disables face checks."""
    try:
        return FaceEmbedder.load(settings.face_model_path)
    except (OSError, ValueError, RuntimeError) as exc:
        # Applications with a face image then go to review (FACE_MODEL_UNAVAILABLE).
        log.error("face embedder unavailable: %s", exc)
        return None


@dataclass
class _Cached:
    value: Any
    fetched_at: float


@dataclass
class Engine:
    """Everything one worker shares between its agents."""

    settings: Settings
    codec: AvroCodec
    redis: aioredis.Redis
    store: EngineStateStore
    features: FeatureStoreProtocol
    loans: LoanStoreProtocol
    faces: FaceChecker
    scorer: ApplicationScorer
    pii_key: bytes
    kafka_config: dict[str, Any]
    chain: ChainHead = field(default_factory=ChainHead)
    monitors: dict[str, ModelMonitor] = field(default_factory=dict)
    views: LenderViews = field(default_factory=LenderViews)
    _views_read_at: dict[str, float] = field(default_factory=dict)
    _models: dict[tuple[str, str], _Cached] = field(default_factory=dict)
    _adjustments: dict[str, _Cached] = field(default_factory=dict)
    _chain_known: set[tuple[str, int]] = field(default_factory=set)
    _bootstrap_state: dict[str, Any] | None = None

    @classmethod
    def create(cls, settings: Settings) -> Engine:
        """Connect to Redis (lazily) and load the models; no network I/O yet."""
        endpoints = resolve_endpoints(settings)
        password = settings.redis_password.get_secret_value() if settings.redis_password else None
        client = aioredis.Redis.from_url(
            endpoints.redis, password=password, socket_timeout=2.0, socket_connect_timeout=2.0
        )
        stores = RedisStores.create(client, settings.redis_key_prefix)
        return cls(
            settings=settings,
            codec=codec_from_settings(settings),
            redis=client,
            store=stores.state,
            features=stores.features,
            loans=stores.loans,
            faces=FaceChecker(
                _load_face_embedder(settings),
                stores.blacklist,
                settings.face_image_max_bytes,
                threads=settings.face_check_threads,
            ),
            scorer=ApplicationScorer(BpCreditModel.load()),
            pii_key=settings.pii_hmac_key.get_secret_value().encode(),
            kafka_config=settings.kafka_client_config(endpoints.kafka),
            _bootstrap_state=load_bootstrap_lr().to_state(),
        )

    async def start(self) -> None:
        """Load the Lua scripts; Redis being down here is not fatal (calls retry later)."""
        try:
            await self.features.load_scripts()
        except RedisError as exc:
            log.warning("redis not reachable at start-up: %s", scrub_text(str(exc)))

    # -- resilience -----------------------------------------------------------------------
    async def with_retry(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run a Redis call with exponential backoff; RedisUnavailable when it keeps failing."""
        delay = self.settings.redis_retry_base_s
        for attempt in range(1, self.settings.redis_retry_attempts + 1):
            try:
                return await call()
            except (RedisError, OSError) as exc:
                if attempt == self.settings.redis_retry_attempts:
                    raise RedisUnavailable(f"{what}: {type(exc).__name__}") from None
                log.warning("redis %s failed (%s), retry %d", what, type(exc).__name__, attempt)
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    # -- decoding -----------------------------------------------------------------------------
    def decode(self, message: Incoming) -> tuple[DecodedEvent | None, Outgoing | None]:
        """Decode one message, or turn it into a dead letter (never raises on bad input)."""
        try:
            return self.codec.decode(message.value, message.topic), None
        except CodecError as exc:
            return None, self.dead_letter(message, exc)

    def decode_all(
        self, messages: Sequence[Incoming], dead_letters: list[Outgoing]
    ) -> list[tuple[Incoming, dict[str, Any]]]:
        """Decoded (message, event) pairs; undecodable messages go to `dead_letters`."""
        decoded = []
        for message in messages:
            event, dead = self.decode(message)
            if dead is not None:
                dead_letters.append(dead)
            elif event is not None:
                decoded.append((message, event.value))
        return decoded

    def dead_letter(self, message: Incoming, error: BaseException) -> Outgoing:
        """Dead-letter output for a message we cannot process."""
        record = dead_letter_record(
            message.topic, error, message.value, message.key, message.partition, message.offset
        )
        return Outgoing(DEAD_LETTER.name, message.topic, record)

    # -- lender configs and models ----------------------------------------------------------
    def _fresh(self, cached: _Cached | None) -> bool:
        return cached is not None and (
            time.monotonic() - cached.fetched_at < self.settings.config_refresh_s
        )

    async def _reload(
        self, what: str, stale: list[str], load: Callable[[list[str]], Awaitable[dict[str, T]]]
    ) -> dict[str, T]:
        """What Redis holds for the stale cache entries; {} while it is down (keep the cache)."""
        try:
            return await self.with_retry(what, lambda: load(stale))
        except RedisUnavailable:
            return {}

    async def lender_views(self, tenants: Iterable[str]) -> dict[str, LenderView]:
        """Each tenant's parsed config, policies and funders (re-read every config_refresh_s).

        One stored document per tenant, parsed once per version; a tenant that never
        published one has the default view, and while Redis is down the known views stay.
        """
        wanted = list(dict.fromkeys(tenants))
        now = time.monotonic()
        stale = [
            t
            for t in wanted
            if now - self._views_read_at.get(t, -math.inf) >= self.settings.config_refresh_s
        ]
        if stale:
            stored = await self._reload("configs", stale, self.store.configs)
            now = time.monotonic()
            for tenant in stale:
                self.views.update(tenant, stored.get(tenant))
                self._views_read_at[tenant] = now
        return {t: self.views.get(t) for t in wanted}

    def _new_model(self, name: str) -> OnlineRiskModel:
        if name == APPLICATION_LR and self._bootstrap_state is not None:
            return OnlineRiskModel.from_state(self._bootstrap_state)
        return OnlineRiskModel(OnlineLRConfig(prior_risk=TRANSACTION_LR_PRIOR))

    async def models(self, name: str, tenants: Iterable[str]) -> dict[str, OnlineRiskModel]:
        """The tenants' online models, reloaded from Redis when the learner saved newer ones."""
        wanted = list(dict.fromkeys(tenants))
        stale = [t for t in wanted if not self._fresh(self._models.get((name, t)))]
        if stale:
            stored = await self._reload("models", stale, partial(self.store.load_models, name))
            now = time.monotonic()
            for tenant in stale:
                current = self._models.get((name, tenant))
                model = current.value if current else None
                state = stored.get(tenant)
                if state is not None and (model is None or state["n_learned"] != model.n_learned):
                    model = OnlineRiskModel.from_state(state)
                self._models[(name, tenant)] = _Cached(model or self._new_model(name), now)
        return {t: self._models[(name, t)].value for t in wanted}

    def adopt_model(self, name: str, tenant: str, model: OnlineRiskModel) -> None:
        """The learner's own copy is authoritative in its process."""
        self._models[(name, tenant)] = _Cached(model, time.monotonic())

    async def lr_weight_adjustments(self, configs: Mapping[str, LenderConfig]) -> dict[str, float]:
        """Each tenant's shared LR weight adjustment, adopted by this worker's monitor.

        Model monitoring runs in every worker (scores) and in the learner (labels); an
        assessment that moves the adjustment publishes it (publish_lr_adjustments), and
        every worker scores with the published value, so one lender's applications get
        one fusion policy whichever worker decides them. Re-read every config_refresh_s.
        """
        stale = [t for t in configs if not self._fresh(self._adjustments.get(t))]
        if stale:
            stored = await self._reload("lr_adjustments", stale, self.store.lr_adjustments)
            now = time.monotonic()
            for tenant in stale:
                known = self._adjustments.get(tenant)
                value = stored.get(tenant, known.value if known else 0.0)
                self._adjustments[tenant] = _Cached(value, now)
        shared = {}
        for tenant, config in configs.items():
            cached = self._adjustments[tenant]
            value = clamp_lr_weight(cached.value, config.lr_weight_adjust_limit)
            # Cache what is used, so that only a real move by a monitor counts as one.
            self._adjustments[tenant] = _Cached(value, cached.fetched_at)
            self.monitor(tenant, config).lr_weight_adjustment = value
            shared[tenant] = value
        return shared

    def moved_lr_adjustments(self, configs: Mapping[str, LenderConfig]) -> dict[str, float]:
        """Adjustments this worker's monitors moved since they adopted the shared value.

        They are used here at once (until the next read from Redis); the caller publishes
        them with publish_lr_adjustments once its outputs are out.
        """
        now, moved = time.monotonic(), {}
        for tenant, config in configs.items():
            value = self.monitor(tenant, config).lr_weight_adjustment
            cached = self._adjustments.get(tenant)
            if cached is None or value != cached.value:
                moved[tenant] = value
                self._adjustments[tenant] = _Cached(value, now)
        return moved

    async def publish_lr_adjustments(self, adjustments: Mapping[str, float]) -> None:
        """Share adjustments this worker's monitoring moved."""
        await self.with_retry(
            "save_lr_adjustments", lambda: self.store.save_lr_adjustments(adjustments)
        )

    def monitor(self, tenant: str, config: LenderConfig) -> ModelMonitor:
        """The champion/challenger monitor this worker keeps for a tenant."""
        monitor = self.monitors.get(tenant)
        if monitor is None:
            monitor = ModelMonitor(MonitorConfig(lr_weight_limit=config.lr_weight_adjust_limit))
            self.monitors[tenant] = monitor
        return monitor

    # -- emitting ---------------------------------------------------------------------------
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

    async def close(self) -> None:
        """Write done markers still waiting (FeatureStore.mark_done_later), release Redis."""
        try:
            await self.features.flush_done()
        except (RedisError, OSError) as exc:
            # Not written: a redelivery processes those events again, with the same output ids.
            log.warning("done markers not written at close: %s", type(exc).__name__)
        await self.redis.aclose()
        self.faces.close()
