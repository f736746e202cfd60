"""Create the registered topics with the Kafka AdminClient, idempotently."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from greencredit.streams.topics import TOPICS, TopicSpec

__all__ = ["TopicReport", "ensure_topics"]

TopicReport = dict[str, str]  # topic name -> "created" | "exists" | "exists (N partitions, want M)"


def ensure_topics(
    client_config: dict[str, Any],
    specs: Iterable[TopicSpec] = TOPICS,
    replication_factor: int = 1,
    timeout: float = 15.0,
) -> TopicReport:
    """Create missing topics; existing ones are left alone and reported.

    A partition count that differs from the registry is reported, not changed:
    adding partitions re-keys data and is an operator's decision.
    """
    admin = AdminClient(client_config)
    specs = list(specs)
    existing = admin.list_topics(timeout=timeout).topics
    report: TopicReport = {}
    to_create = []
    for spec in specs:
        if spec.name in existing:
            have = len(existing[spec.name].partitions)
            report[spec.name] = (
                "exists"
                if have == spec.partitions
                else f"exists ({have} partitions, registry says {spec.partitions})"
            )
        else:
            to_create.append(
                NewTopic(spec.name, spec.partitions, replication_factor, config=spec.kafka_config())
            )
    if to_create:
        futures = admin.create_topics(to_create, request_timeout=timeout)
        for name, future in futures.items():
            try:
                future.result(timeout)
                report[name] = "created"
            except KafkaException as exc:
                error = exc.args[0]
                if (
                    isinstance(error, KafkaError)
                    and error.code() == KafkaError.TOPIC_ALREADY_EXISTS
                ):
                    report[name] = "exists"  # created concurrently by another process
                else:
                    raise
    return {spec.name: report[spec.name] for spec in specs}
