"""What a worker keeps per lender between batches: views, online models, LR weights, monitors.

Every worker re-reads the lenders' configs, the learner's models and the shared LR weight
adjustments from the engine state store every `config_refresh_s`; while the store is down
the known values stay, so scoring goes on with what the worker last saw.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from greencredit.infra.stores import EngineStateStore
from greencredit.models.lender_config import LenderConfig
from greencredit.models.lender_view import LenderView, LenderViews
from greencredit.models.monitoring import ModelMonitor, MonitorConfig, clamp_lr_weight
from greencredit.models.online_lr import OnlineLRConfig, OnlineRiskModel

from .retry import RedisUnavailable, Retry

__all__ = ["APPLICATION_LR", "TRANSACTION_LR", "LenderCaches"]

T = TypeVar("T")
APPLICATION_LR = "application_lr"
TRANSACTION_LR = "transaction_lr"
# Fraud is rare: an untrained transaction model starts near a plausible base rate, not 0.5.
TRANSACTION_LR_PRIOR = 0.02


@dataclass
class _Cached:
    value: Any
    fetched_at: float


@dataclass
class LenderCaches:
    """One worker's per-lender views, models, LR weight adjustments and model monitors."""

    state: EngineStateStore
    retry: Retry
    refresh_s: float
    bootstrap_state: dict[str, Any] | None = None  # the application model before any label
    monitors: dict[str, ModelMonitor] = field(default_factory=dict)
    views: LenderViews = field(default_factory=LenderViews)
    _views_read_at: dict[str, float] = field(default_factory=dict)
    _models: dict[tuple[str, str], _Cached] = field(default_factory=dict)
    _adjustments: dict[str, _Cached] = field(default_factory=dict)

    def _fresh(self, cached: _Cached | None) -> bool:
        return cached is not None and (time.monotonic() - cached.fetched_at < self.refresh_s)

    async def _reload(
        self, what: str, stale: list[str], load: Callable[[list[str]], Awaitable[dict[str, T]]]
    ) -> dict[str, T]:
        """What the store holds for the stale entries; {} while it is down (keep the cache)."""
        try:
            return await self.retry(what, lambda: load(stale))
        except RedisUnavailable:
            return {}

    async def lender_views(self, tenants: Iterable[str]) -> dict[str, LenderView]:
        """Each tenant's parsed config, policies and funders (re-read every refresh_s).

        One stored document per tenant, parsed once per version; a tenant that never
        published one has the default view, and while Redis is down the known views stay.
        """
        wanted = list(dict.fromkeys(tenants))
        now = time.monotonic()
        stale = [t for t in wanted if now - self._views_read_at.get(t, -math.inf) >= self.refresh_s]
        if stale:
            stored = await self._reload("configs", stale, self.state.configs)
            now = time.monotonic()
            for tenant in stale:
                self.views.update(tenant, stored.get(tenant))
                self._views_read_at[tenant] = now
        return {t: self.views.get(t) for t in wanted}

    def _new_model(self, name: str) -> OnlineRiskModel:
        if name == APPLICATION_LR and self.bootstrap_state is not None:
            return OnlineRiskModel.from_state(self.bootstrap_state)
        return OnlineRiskModel(OnlineLRConfig(prior_risk=TRANSACTION_LR_PRIOR))

    async def models(self, name: str, tenants: Iterable[str]) -> dict[str, OnlineRiskModel]:
        """The tenants' online models, reloaded from Redis when the learner saved newer ones."""
        wanted = list(dict.fromkeys(tenants))
        stale = [t for t in wanted if not self._fresh(self._models.get((name, t)))]
        if stale:
            stored = await self._reload("models", stale, partial(self.state.load_models, name))
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
        one fusion policy whichever worker decides them. Re-read every refresh_s.
        """
        stale = [t for t in configs if not self._fresh(self._adjustments.get(t))]
        if stale:
            stored = await self._reload("lr_adjustments", stale, self.state.lr_adjustments)
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
        await self.retry("save_lr_adjustments", lambda: self.state.save_lr_adjustments(adjustments))

    def monitor(self, tenant: str, config: LenderConfig) -> ModelMonitor:
        """The champion/challenger monitor this worker keeps for a tenant."""
        monitor = self.monitors.get(tenant)
        if monitor is None:
            monitor = ModelMonitor(MonitorConfig(lr_weight_limit=config.lr_weight_adjust_limit))
            self.monitors[tenant] = monitor
        return monitor
