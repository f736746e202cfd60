"""The one registry of topics: names, schemas, keys, partitions, retention.

Keys are per customer / account / loan / device so Kafka keeps each one's events
in order; the partition count is the ceiling on parallel workers per topic.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ANALYST_FEEDBACK",
    "AUDITED_TOPICS",
    "CUSTOMER_UPDATES",
    "DEAD_LETTER",
    "DECISIONS",
    "DELINQUENCY_ESCALATIONS",
    "DEVICE_SIGNALS",
    "DISBURSEMENTS",
    "FRAUD_ALERTS",
    "LENDER_CONFIG",
    "LOAN_APPLICATIONS",
    "LOAN_CLOCK",
    "LOAN_OPENINGS",
    "LOAN_SERVICING",
    "MODEL_HEALTH",
    "REPAYMENTS",
    "REVIEWS",
    "TOPICS",
    "TRANSACTIONS",
    "TopicSpec",
    "UnknownTopic",
    "topic",
]

_DAY_MS = 24 * 60 * 60 * 1000


class UnknownTopic(KeyError):
    """A topic name that is not in the registry."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic: what it carries, how it is keyed and kept."""

    name: str
    schema: str  # full Avro record name of the value
    key_field: str  # value field whose string is the message key
    partitions: int
    retention_ms: int | None  # None: keep forever
    compacted: bool = False
    direction: str = "input"  # input | output | internal (the engine's own to-do list)
    doc: str = ""

    def kafka_config(self) -> dict[str, str]:
        """Topic-level configuration for CreateTopics."""
        config = {"cleanup.policy": "compact" if self.compacted else "delete"}
        if self.retention_ms is not None and not self.compacted:
            config["retention.ms"] = str(self.retention_ms)
        return config


_NS = "greencredit.v1."
TOPICS: tuple[TopicSpec, ...] = (
    # --- inputs -----------------------------------------------------------------
    TopicSpec(
        "greencredit.loan-applications",
        _NS + "LoanApplication",
        "customer_id",
        6,
        7 * _DAY_MS,
        doc="Loan applications from the platform (raw PII: engine only).",
    ),
    TopicSpec(
        "greencredit.transactions",
        _NS + "Transaction",
        "account_id",
        6,
        7 * _DAY_MS,
        doc="Card and account transactions.",
    ),
    TopicSpec(
        "greencredit.device-signals",
        _NS + "DeviceSignal",
        "device_id",
        6,
        7 * _DAY_MS,
        doc="Device risk signals from the mobile SDK.",
    ),
    TopicSpec(
        "greencredit.repayments",
        _NS + "Repayment",
        "loan_id",
        6,
        30 * _DAY_MS,
        doc="Repayments and missed instalments.",
    ),
    TopicSpec(
        "greencredit.analyst-feedback",
        _NS + "AnalystFeedback",
        "subject_event_id",
        # One partition: one worker learns, so the online models' updates never race.
        # Labels are few (human-paced); scorers reload the learned state from Redis.
        1,
        30 * _DAY_MS,
        doc="Labels from fraud operations; teach the online model.",
    ),
    TopicSpec(
        "greencredit.lender-config",
        _NS + "LenderConfig",
        "tenant_id",
        1,
        None,
        compacted=True,
        doc="Lender AHP weights and thresholds; newest version wins.",
    ),
    TopicSpec(
        "greencredit.loan-servicing",
        _NS + "LoanServicing",
        "loan_id",
        6,
        30 * _DAY_MS,
        doc="Payment holidays, guarantor status, collateral values, behaviour signals.",
    ),
    TopicSpec(
        "greencredit.loan-clock",
        _NS + "LoanClockTick",
        "as_of",
        1,
        30 * _DAY_MS,
        doc="The daily check tick (one a day; tests publish ticks to move time).",
    ),
    TopicSpec(
        "greencredit.customer-updates",
        _NS + "CustomerContactUpdate",
        "customer_id",
        3,
        7 * _DAY_MS,
        doc="Changed customer contact data (raw PII: engine only).",
    ),
    # --- outputs ----------------------------------------------------------------
    TopicSpec(
        "greencredit.decisions",
        _NS + "ApplicationDecision",
        "customer_id",
        6,
        400 * _DAY_MS,
        direction="output",
        doc="Every decision record (audit chain).",
    ),
    TopicSpec(
        "greencredit.reviews",
        _NS + "ApplicationDecision",
        "customer_id",
        3,
        30 * _DAY_MS,
        direction="output",
        doc="Decisions that need an analyst.",
    ),
    TopicSpec(
        "greencredit.fraud-alerts",
        _NS + "FraudAlert",
        "customer_id",
        3,
        30 * _DAY_MS,
        direction="output",
        doc="Cases for fraud operations.",
    ),
    TopicSpec(
        "greencredit.disbursements",
        _NS + "Disbursement",
        "customer_id",
        6,
        400 * _DAY_MS,
        direction="output",
        doc="Exactly one per approved application.",
    ),
    TopicSpec(
        "greencredit.delinquency-escalations",
        _NS + "DelinquencyEscalation",
        "loan_id",
        3,
        30 * _DAY_MS,
        direction="output",
        doc="Level changes for collection systems.",
    ),
    TopicSpec(
        "greencredit.model-health",
        _NS + "ModelHealth",
        "tenant_id",
        1,
        90 * _DAY_MS,
        direction="output",
        doc="Drift and champion/challenger findings with the recommended action.",
    ),
    TopicSpec(
        "greencredit.loan-openings",
        _NS + "Disbursement",
        "customer_id",
        6,
        7 * _DAY_MS,
        direction="internal",
        doc=(
            "Disbursements sent while Redis was down, whose loans the worker opens once it"
            " answers (not chained: the audited copy is on the disbursements topic). Empty"
            " in normal operation."
        ),
    ),
    TopicSpec(
        "greencredit.dead-letter",
        _NS + "DeadLetter",
        "source_topic",
        1,
        3 * _DAY_MS,
        direction="output",
        doc="Undecodable/invalid inputs with original bytes: restricted, short retention.",
    ),
)

_BY_NAME = {spec.name: spec for spec in TOPICS}


def topic(name: str) -> TopicSpec:
    """The spec of a registered topic; raises UnknownTopic with the known names."""
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(sorted(_BY_NAME))
        raise UnknownTopic(f"unknown topic {name!r}; known topics: {known}") from None


# Every topic by name, so code passes TopicSpecs and never spells a topic string.
LOAN_APPLICATIONS = topic("greencredit.loan-applications")
TRANSACTIONS = topic("greencredit.transactions")
DEVICE_SIGNALS = topic("greencredit.device-signals")
REPAYMENTS = topic("greencredit.repayments")
ANALYST_FEEDBACK = topic("greencredit.analyst-feedback")
LENDER_CONFIG = topic("greencredit.lender-config")
LOAN_SERVICING = topic("greencredit.loan-servicing")
LOAN_CLOCK = topic("greencredit.loan-clock")
CUSTOMER_UPDATES = topic("greencredit.customer-updates")
DECISIONS = topic("greencredit.decisions")
REVIEWS = topic("greencredit.reviews")
FRAUD_ALERTS = topic("greencredit.fraud-alerts")
DISBURSEMENTS = topic("greencredit.disbursements")
DELINQUENCY_ESCALATIONS = topic("greencredit.delinquency-escalations")
LOAN_OPENINGS = topic("greencredit.loan-openings")
MODEL_HEALTH = topic("greencredit.model-health")
DEAD_LETTER = topic("greencredit.dead-letter")
# Topics whose records carry the tamper-evident hash chain (one writer per partition).
AUDITED_TOPICS = frozenset({DECISIONS, DISBURSEMENTS})
