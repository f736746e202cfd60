"""Transactions -> Redis features -> fraud score -> fraud alert above the lender's threshold."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from greencredit.infra.feature_store import TransactionKeys
from greencredit.models.fraud import (
    transaction_fraud_score,
    transaction_lr_features,
)
from greencredit.models.green import default_taxonomy, observe_spend
from greencredit.streams import topics
from greencredit.streams.masking import mask_card, pseudonym
from greencredit.streams.records import behaviour_record, fraud_alert_record

from .batch import BatchResult
from .engine import TRANSACTION_LR, Engine, Incoming, Outgoing, RedisUnavailable

__all__ = ["process_transactions"]

_CARD_PRESENT = frozenset({"POS", "ATM"})
# Below this a transaction says nothing about the loan; above, the loan hears about it
# (and the delinquency policy decides whether it is an early warning).
BEHAVIOUR_SIGNAL_AT = 0.5


def _keys(engine: Engine, txn: dict[str, Any]) -> TransactionKeys:
    device = txn.get("device_id")
    return TransactionKeys(
        event_id=txn["event_id"],
        occurred_at=txn["occurred_at"],
        account_id=txn["account_id"],
        customer_id=txn["customer_id"],
        card_ref=pseudonym(txn["card_number"], engine.pii_key, "card"),
        merchant_id=txn["merchant_id"],
        amount_minor=txn["amount_minor"],
        device_ref=pseudonym(device, engine.pii_key, "device") if device else None,
        ip_country=txn.get("ip_country"),
        # Online merchants abroad are normal; the terminal's country only counts card-present.
        merchant_country=txn.get("merchant_country") if txn["channel"] in _CARD_PRESENT else None,
    )


async def process_transactions(
    engine: Engine, messages: Sequence[Incoming], now: datetime | None = None
) -> BatchResult:
    """Score a batch of transactions; alerts for those at or above the lender's threshold."""
    now = now or datetime.now(UTC)
    result = BatchResult()
    transactions = [event for _, event in engine.decode_all(messages, result.outputs)]
    if not transactions:
        return result
    ids = [t["event_id"] for t in transactions]
    try:
        done = await engine.with_retry("done_among", lambda: engine.store.done_among(ids))
        transactions = [t for t in transactions if t["event_id"] not in done]
        keys = [_keys(engine, t) for t in transactions]
        features = await engine.with_retry(
            "record_transactions", lambda: engine.features.record_transactions(keys)
        )
    except RedisUnavailable:
        # No features, no score: raise nothing now, leave the inputs un-done. Redelivery
        # after a restart scores them; the dead-letter topic keeps them for operators too.
        for message in messages:
            result.outputs.append(engine.dead_letter(message, RedisUnavailable("features")))
        return result
    tenants = [t["tenant_id"] for t in transactions]
    views = await engine.lender_views(tenants)
    models = await engine.models(TRANSACTION_LR, tenants)
    tz = engine.settings.local_timezone
    for txn, feats in zip(transactions, features, strict=True):
        lr_x = transaction_lr_features(feats, txn["amount_minor"], txn["occurred_at"], tz)
        lr_risk = models[txn["tenant_id"]].predict_one(lr_x)
        fraud = transaction_fraud_score(feats, txn["amount_minor"], txn["occurred_at"], lr_risk, tz)
        if txn.get("loan_id") and fraud.score >= BEHAVIOUR_SIGNAL_AT:
            # Post-loan behaviour check (seed 5.3.1): a disbursed loan's money spent in an
            # unusual way raises the loan's risk before any instalment is missed.
            result.outputs.append(
                Outgoing(
                    topics.LOAN_SERVICING.name,
                    txn["loan_id"],
                    behaviour_record(txn, fraud.score, now),
                )
            )
        if fraud.score >= views[txn["tenant_id"]].config.fraud_alert_threshold:
            record = fraud_alert_record(
                "TRANSACTION",
                txn,
                fraud.score,
                fraud.reasons,
                now,
                customer_id=txn["customer_id"],
                card_masked=mask_card(txn["card_number"]),
                device_ref=_keys(engine, txn).device_ref,
            )
            result.outputs.append(Outgoing(topics.FRAUD_ALERTS.name, txn["customer_id"], record))
            # Analysts label alerts: keep what was scored so the label can teach the model.
            result.scored[txn["event_id"]] = {
                "kind": "transaction",
                "tenant_id": txn["tenant_id"],
                "features": lr_x,
                "risk": lr_risk,
                "bp_prob": None,
                "scored_at": now.isoformat(),
            }
    await _check_purposes(engine, transactions, result, now)
    result.done_event_ids.extend(t["event_id"] for t in transactions)
    return result


async def _check_purposes(
    engine: Engine, transactions: list[dict[str, Any]], result: BatchResult, now: datetime
) -> None:
    """Green-purpose integrity: check a green loan's money is spent as its purpose says.

    A diversion beyond the tolerance alerts fraud ops once; if it persists (beyond the
    persistence share) the alert is critical and the loan hears of it as behaviour risk,
    which the delinquency policy turns into an early-warning escalation.
    """
    spending = [t for t in transactions if t.get("loan_id")]
    if not spending:
        return
    watches = await engine.with_retry(
        "purpose_watches", partial(engine.store.purpose_watches, [t["loan_id"] for t in spending])
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
        result.after_emit.append(partial(engine.store.save_purpose_watches, list(changed.values())))


def register(app: Any, topics_by_name: dict[str, Any], runtime: Any) -> None:
    """Attach the transactions agent to the Faust app."""
    runtime.attach(
        app, topics_by_name[topics.TRANSACTIONS.name], "transactions", process_transactions
    )
