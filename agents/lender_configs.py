"""Lender configurations from the compacted config topic -> Redis -> every worker.

The topic has one partition, so one worker applies configs; all workers re-read them from
Redis every `config_refresh_s`, so a new version takes effect without a restart. An invalid
configuration (bad matrix, inconsistent judgements) is dead-lettered with the reason and the
lender keeps its previous version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from greencredit.infra.stores import EngineStateStore
from greencredit.models.ahp import AhpInputError
from greencredit.models.lender_config import LenderConfig, LenderConfigError
from greencredit.models.lender_view import EXTENSION_FIELDS, parse_extensions
from greencredit.streams import topics

from .batch import BatchResult
from .messages import Decoder, Incoming, dead_letter
from .resources import Resources
from .retry import RedisUnavailable, Retry

__all__ = ["LenderConfigDeps", "config_from_event", "process_lender_configs"]


@dataclass(frozen=True)
class LenderConfigDeps:
    """What applying lender configs uses: the state store the configs are kept in."""

    decoder: Decoder
    retry: Retry
    state: EngineStateStore

    @classmethod
    def of(cls, r: Resources) -> LenderConfigDeps:
        """The worker's part for this processor."""
        return cls(r.decoder, r.retry, r.state)


class InvalidLenderConfig(ValueError):
    """The configuration event is well-formed Avro but not a usable configuration."""

    error_type = "InvalidLenderConfig"


def config_from_event(event: Mapping[str, Any]) -> LenderConfig:
    """LenderConfig from a decoded LenderConfig event (nodes carry matrix or weights)."""
    nodes = []
    for node in event["nodes"]:
        entry: dict[str, Any] = {"name": node["name"], "criteria": list(node["criteria"])}
        if node.get("matrix") is not None:
            entry["matrix"] = node["matrix"]
        if node.get("weights") is not None:
            entry["weights"] = dict(node["weights"])
        nodes.append(entry)
    return LenderConfig.from_dict(
        {
            "tenant_id": event["tenant_id"],
            "version": event["config_version"],
            "hierarchy": {"root": event["root"], "nodes": nodes},
            "approve_below": event["approve_below"],
            "decline_at_or_above": event["decline_at_or_above"],
            "fraud_alert_threshold": event["fraud_alert_threshold"],
            "lr_weight_adjust_limit": event["lr_weight_adjust_limit"],
            # Schema v3; None in older versions' events (the shipped threshold applies).
            "face_match_threshold": event.get("face_match_threshold"),
        }
    )


async def process_lender_configs(
    deps: LenderConfigDeps, messages: Sequence[Incoming]
) -> BatchResult:
    """Validate and store each configuration (newest version wins)."""
    result = BatchResult()
    for message, event in deps.decoder.decode_all(messages, result.outputs):
        try:
            config = config_from_event(event)
            extensions = _checked_extensions(event)
        except (LenderConfigError, AhpInputError, ValueError, TypeError, KeyError) as exc:
            result.outputs.append(dead_letter(message, InvalidLenderConfig(str(exc))))
            continue
        try:
            await _store_config(deps, config, extensions)
        except RedisUnavailable as exc:
            raise RuntimeError("lender config not stored: redis unavailable") from exc
    return result


async def _store_config(
    deps: LenderConfigDeps, config: LenderConfig, extensions: dict[str, Any]
) -> bool:
    # Extensions ride along in the stored document (LenderConfig ignores unknown keys).
    document = {**config.to_dict(), **extensions}
    return await deps.retry(
        "put_config",
        lambda: deps.state.put_config_if_newer(config.tenant_id, config.version, document),
    )


def _checked_extensions(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event's optional JSON parts, validated by parsing them (errors name the part)."""
    extensions = {name: event.get(name) for name in EXTENSION_FIELDS}
    parse_extensions(extensions)  # LenderViewError (a ValueError) names what is wrong
    return extensions


def register(app: Any, topics_by_name: dict[str, Any], runtime: Any) -> None:
    """Attach the lender-config agent to the Faust app."""
    runtime.attach(
        app,
        topics_by_name[topics.LENDER_CONFIG.name],
        "lender_configs",
        process_lender_configs,
        LenderConfigDeps.of,
        quiet=True,
    )
