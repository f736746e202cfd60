"""Transactions -> Redis features -> fraud score -> fraud alert above the lender's threshold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np

from greencredit.infra.feature_store import TransactionKeys
from greencredit.infra.stores import EngineStateStore, FeatureStoreProtocol
from greencredit.models.features import TransactionFeatures
from greencredit.models.fraud import TRANSACTION_LR_FEATURES, score_transactions
from greencredit.models.green import default_taxonomy, observe_spend
from greencredit.streams import topics
from greencredit.streams.masking import mask_card, pseudonym
from greencredit.streams.records import behaviour_record, fraud_alert_record

from .batch import BatchResult
from .lender_cache import TRANSACTION_LR, LenderCaches
from .messages import Decoder, Incoming, Outgoing, dead_letter
from .resources import Resources
from .retry import RedisUnavailable, Retry

__all__ = ["TransactionDeps", "process_transactions"]

_CARD_PRESENT = frozenset({"POS", "ATM"})
# Below this a transaction says nothing about the loan; above, the loan hears about it
# (and the delinquency policy decides whether it is an early warning).
BEHAVIOUR_SIGNAL_AT = 0.5


@dataclass(frozen=True)
class TransactionDeps:
    """What scoring transactions uses: features, purpose watches, lenders' views and models."""

    decoder: Decoder
    retry: Retry
    state: EngineStateStore  # green loans' purpose watches
    features: FeatureStoreProtocol  # transaction features and done markers
    lenders: LenderCaches  # alert thresholds and the transaction models
    pii_key: bytes  # pseudonyms of card and device
    local_timezone: str  # night-time is local

    @classmethod
    def of(cls, r: Resources) -> TransactionDeps:
        """The worker's part for this processor."""
        return cls(
            r.decoder,
            r.retry,
            r.state,
            r.features,
            r.lenders,
            r.pii_key,
            r.settings.local_timezone,
        )


def _keys(deps: TransactionDeps, txn: dict[str, Any]) -> TransactionKeys:
    device = txn.get("device_id")
    return TransactionKeys(
        event_id=txn["event_id"],
        occurred_at=txn["occurred_at"],
        account_id=txn["account_id"],
        customer_id=txn["customer_id"],
        card_ref=pseudonym(txn["card_number"], deps.pii_key, "card"),
        merchant_id=txn["merchant_id"],
        amount_minor=txn["amount_minor"],
        device_ref=pseudonym(device, deps.pii_key, "device") if device else None,
        ip_country=txn.get("ip_country"),
        # Online merchants abroad are normal; the terminal's country only counts card-present.
        merchant_country=txn.get("merchant_country") if txn["channel"] in _CARD_PRESENT else None,
    )


async def process_transactions(
    deps: TransactionDeps, messages: Sequence[Incoming], now: datetime | None = None
) -> BatchResult:
    """Score a batch of transactions; alerts for those at or above the lender's threshold.

    One feature-store call per batch: it skips transactions already done (their outputs were
    acknowledged) and writes the done markers of earlier batches. This batch's own markers
    wait until its outputs are acknowledged (after-emit), then ride with the next call.
    """
    now = now or datetime.now(UTC)
    result = BatchResult()
    decoded = [event for _, event in deps.decoder.decode_all(messages, result.outputs)]
    if not decoded:
        return result
    all_keys = [_keys(deps, t) for t in decoded]
    try:
        recorded = await deps.retry(
            "record_transactions", lambda: deps.features.record_new_transactions(all_keys)
        )
    except RedisUnavailable:
        # No features, no score: raise nothing now, leave the inputs un-done. Redelivery
        # after a restart scores them; the dead-letter topic keeps them for operators too.
        for message in messages:
            result.outputs.append(dead_letter(message, RedisUnavailable("features")))
        return result
    fresh = [i for i, f in enumerate(recorded) if f is not None]
    if not fresh:
        return result
    transactions = [decoded[i] for i in fresh]
    keys = [all_keys[i] for i in fresh]
    features = [f for f in recorded if f is not None]
    await _score(deps, transactions, keys, features, result, now)
    await _check_purposes(deps, transactions, result, now)
    result.after_emit.append(partial(_mark_done, deps, [t["event_id"] for t in transactions]))
    return result


async def _mark_done(deps: TransactionDeps, event_ids: list[str]) -> None:
    deps.features.mark_done_later(event_ids)


async def _score(
    deps: TransactionDeps,
    transactions: list[dict[str, Any]],
    keys: list[TransactionKeys],
    features: list[TransactionFeatures],
    result: BatchResult,
    now: datetime,
) -> None:
    """Score the batch as columns; build records only for rows that need them."""
    tenants = [t["tenant_id"] for t in transactions]
    views = await deps.lenders.lender_views(tenants)
    models = await deps.lenders.models(TRANSACTION_LR, tenants)
    batch = score_transactions(
        features,
        [t["amount_minor"] for t in transactions],
        [t["occurred_at"] for t in transactions],
        deps.local_timezone,
    )
    lr_risk = np.empty(len(transactions))
    rows_of: dict[str, list[int]] = {}
    for i, tenant in enumerate(tenants):
        rows_of.setdefault(tenant, []).append(i)
    for tenant, rows in rows_of.items():
        lr_risk[rows] = models[tenant].predict_matrix(
            batch.lr_features[rows], TRANSACTION_LR_FEATURES
        )
    batch = batch.with_lr(lr_risk)
    thresholds = np.array([views[t].config.fraud_alert_threshold for t in tenants])
    has_loan = np.array([bool(t.get("loan_id")) for t in transactions], dtype=bool)
    for i in np.flatnonzero(has_loan & (batch.scores >= BEHAVIOUR_SIGNAL_AT)).tolist():
        # Post-loan behaviour check (seed 5.3.1): a disbursed loan's money spent in an
        # unusual way raises the loan's risk before any instalment is missed.
        txn = transactions[i]
        result.outputs.append(
            Outgoing(
                topics.LOAN_SERVICING.name,
                txn["loan_id"],
                behaviour_record(txn, float(batch.scores[i]), now),
            )
        )
    for i in np.flatnonzero(batch.scores >= thresholds).tolist():
        txn, score = transactions[i], float(batch.scores[i])
        record = fraud_alert_record(
            "TRANSACTION",
            txn,
            score,
            batch.reasons(i),
            now,
            customer_id=txn["customer_id"],
            card_masked=mask_card(txn["card_number"]),
            device_ref=keys[i].device_ref,
        )
        result.outputs.append(Outgoing(topics.FRAUD_ALERTS.name, txn["customer_id"], record))
        # Analysts label alerts: keep what was scored so the label can teach the model.
        result.scored[txn["event_id"]] = {
            "kind": "transaction",
            "tenant_id": txn["tenant_id"],
            "features": batch.lr_row(i),
            "risk": float(lr_risk[i]),
            "bp_prob": None,
            "scored_at": now.isoformat(),
        }


async def _check_purposes(
    deps: TransactionDeps, transactions: list[dict[str, Any]], result: BatchResult, now: datetime
) -> None:
    """Green-purpose integrity: check a green loan's money is spent as its purpose says.

    A diversion beyond the tolerance alerts fraud ops once; if it persists (beyond the
    persistence share) the alert is critical and the loan hears of it as behaviour risk,
    which the delinquency policy turns into an early-warning escalation.
    """
    spending = [t for t in transactions if t.get("loan_id")]
    if not spending:
        return
    watches = await deps.retry(
        "purpose_watches", partial(deps.state.purpose_watches, [t["loan_id"] for t in spending])
    )
    if not watches:
        return
    changed = {}
    for txn in spending:
        state = watches.get(txn["loan_id"])
        if state is None:
            continue
        state, finding = observe_spend(state, txn["mcc"], txn["amount_minor"], default_taxonomy())
        watches[txn["loan_id"]] = changed[txn["loan_id"]] = state
        if finding is None:
            continue
        diverted = state.spent_other_minor / state.principal_minor
        alert = fraud_alert_record(
            "GREEN_PURPOSE",
            txn,
            min(diverted, 1.0),
            [(str(finding), min(diverted, 1.0))],
            now,
            customer_id=txn["customer_id"],
            card_masked=mask_card(txn["card_number"]),
        )
        if finding == "DIVERSION_ESCALATION":
            alert["severity"] = "CRITICAL"
            result.outputs.append(
                Outgoing(
                    topics.LOAN_SERVICING.name,
                    txn["loan_id"],
                    behaviour_record(txn, 1.0, now, "diversion"),
                )
            )
        result.outputs.append(Outgoing(topics.FRAUD_ALERTS.name, txn["customer_id"], alert))
    if changed:
        result.after_emit.append(partial(deps.state.save_purpose_watches, list(changed.values())))


def register(app: Any, topics_by_name: dict[str, Any], runtime: Any) -> None:
    """Attach the transactions agent to the Faust app."""
    runtime.attach(
        app,
        topics_by_name[topics.TRANSACTIONS.name],
        "transactions",
        process_transactions,
        TransactionDeps.of,
        pipelined=True,
    )
