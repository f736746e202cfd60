"""Analyst feedback (labels) -> the online models learn -> review/alert cases close.

The feedback topic has one partition: this is the only place the online models learn, and
the learned state is saved to Redis, from where every scoring worker reloads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from greencredit.infra.stores import EngineStateStore
from greencredit.models.monitoring import observe_label
from greencredit.models.online_lr import OnlineRiskModel
from greencredit.streams import topics
from greencredit.streams.records import model_health_record

from .batch import BatchResult
from .lender_cache import APPLICATION_LR, TRANSACTION_LR, LenderCaches
from .messages import Decoder, Incoming, Outgoing
from .resources import Resources
from .retry import Retry

__all__ = ["POSITIVE_LABELS", "FeedbackDeps", "process_feedback"]

# The bad class the online models predict: fraud for transactions, default for applications.
POSITIVE_LABELS = frozenset({"FRAUD", "DEFAULTED"})


@dataclass(frozen=True)
class FeedbackDeps:
    """What learning from labels uses: pending scores, saved models and cases, the lenders."""

    decoder: Decoder
    retry: Retry
    state: EngineStateStore  # pending scored entries, saved models, cases
    lenders: LenderCaches  # the models learned, LR weights and monitors

    @classmethod
    def of(cls, r: Resources) -> FeedbackDeps:
        """The worker's part for this processor."""
        return cls(r.decoder, r.retry, r.state, r.lenders)


async def process_feedback(
    deps: FeedbackDeps, messages: Sequence[Incoming], now: datetime | None = None
) -> BatchResult:
    """Learn from each label whose scored features are still pending; close its case."""
    now = now or datetime.now(UTC)
    result = BatchResult()
    labels = [event for _, event in deps.decoder.decode_all(messages, result.outputs)]
    if not labels:
        return result
    subjects = [label["subject_event_id"] for label in labels]
    pending = await deps.retry("take_scored", lambda: deps.state.take_scored(subjects))
    changed: dict[tuple[str, str], Any] = {}
    adjusted: dict[str, float] = {}
    for label in labels:
        entry = pending.get(label["subject_event_id"])
        if entry is None:
            continue  # unknown, expired or already learned (GETDEL): nothing to teach
        tenant = entry["tenant_id"]
        name = APPLICATION_LR if entry["kind"] == "application" else TRANSACTION_LR
        model = (await deps.lenders.models(name, [tenant]))[tenant]
        positive = label["label"] in POSITIVE_LABELS
        if name == APPLICATION_LR and entry.get("bp_prob") is not None:
            config = (await deps.lenders.lender_views([tenant]))[tenant].config
            await deps.lenders.lr_weight_adjustments({tenant: config})  # start from the shared one
            health_events = observe_label(
                deps.lenders.monitor(tenant, config), entry["bp_prob"], entry["risk"], positive, now
            )
            adjusted |= deps.lenders.moved_lr_adjustments({tenant: config})
            for health in health_events:
                result.outputs.append(
                    Outgoing(
                        topics.MODEL_HEALTH.name,
                        tenant,
                        model_health_record(health, tenant, "learner"),
                    )
                )
        model.learn_one(entry["features"], positive)
        deps.lenders.adopt_model(name, tenant, model)
        changed[(name, tenant)] = model
    for (name, tenant), model in changed.items():
        await _save_model(deps, name, tenant, model)
    if adjusted:
        await deps.lenders.publish_lr_adjustments(adjusted)
    cases = {
        (label.get("case_id") or label["subject_event_id"]): label["label"] for label in labels
    }
    await deps.retry("close_cases", lambda: deps.state.close_cases(cases))
    return result


async def _save_model(deps: FeedbackDeps, name: str, tenant: str, model: OnlineRiskModel) -> None:
    state = model.to_state()
    await deps.retry("save_model", lambda: deps.state.save_model(name, tenant, state))


def register(app: Any, topics_by_name: dict[str, Any], runtime: Any) -> None:
    """Attach the feedback agent to the Faust app."""
    runtime.attach(
        app,
        topics_by_name[topics.ANALYST_FEEDBACK.name],
        "feedback",
        process_feedback,
        FeedbackDeps.of,
        quiet=True,
    )
