"""One lender's stored configuration document, parsed once per version into what decides.

A lender-config event carries the AHP hierarchy and thresholds (:class:`LenderConfig`) and
three optional JSON parts: the post-loan delinquency policy, the green pricing and the
funding partners. Workers used to parse the same stored document twice (once per part,
each with its own cache); :class:`LenderViews` parses it once per (tenant, version) and
hands out the same immutable :class:`LenderView` until the version changes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from .delinquency_policy import DelinquencyPolicy, DelinquencyPolicyError
from .green import Funder, GreenPricing, GreenPricingError, GreenTaxonomy, approve_below_for
from .lender_config import LenderConfig, LenderConfigError, default_lender_config

__all__ = [
    "EXTENSION_FIELDS",
    "LenderView",
    "LenderViewError",
    "LenderViews",
    "funder_from_dict",
    "parse_extensions",
]

log = logging.getLogger(__name__)

# The optional parts of a lender-config event, each a JSON string (or null).
EXTENSION_FIELDS = ("delinquency_policy", "green_pricing", "funders")


class LenderViewError(ValueError):
    """A stored lender document that cannot be used; the message names the part."""


def funder_from_dict(item: Mapping[str, Any]) -> Funder:
    """A funder mandate from its JSON object (the lender-config `funders` list)."""
    categories = item.get("categories")
    return Funder(
        funder_id=item["funder_id"],
        green_only=bool(item["green_only"]),
        capacity_minor=int(item["capacity_minor"]),
        max_risk_score=float(item["max_risk_score"]),
        categories=tuple(categories) if categories is not None else None,
    )


def parse_extensions(
    document: Mapping[str, Any],
) -> tuple[DelinquencyPolicy, GreenPricing, tuple[Funder, ...]]:
    """The optional JSON parts of a document (absent parts take their defaults)."""
    delinquency = document.get("delinquency_policy")
    pricing = document.get("green_pricing")
    funders = document.get("funders")
    try:
        return (
            DelinquencyPolicy.from_dict(orjson.loads(delinquency))
            if delinquency
            else DelinquencyPolicy(),
            GreenPricing.from_dict(orjson.loads(pricing)) if pricing else GreenPricing(),
            tuple(funder_from_dict(item) for item in orjson.loads(funders)) if funders else (),
        )
    except orjson.JSONDecodeError as exc:
        raise LenderViewError(f"an optional part is not valid JSON: {exc}") from None
    except (DelinquencyPolicyError, GreenPricingError, ValueError, TypeError, KeyError) as exc:
        raise LenderViewError(f"an optional part is invalid: {exc}") from None


@dataclass(frozen=True)
class LenderView:
    """Everything about one lender version that the application decision and servicing use."""

    config: LenderConfig
    delinquency: DelinquencyPolicy = field(default_factory=DelinquencyPolicy)
    pricing: GreenPricing = field(default_factory=GreenPricing)
    funders: tuple[Funder, ...] = ()

    @property
    def tenant_id(self) -> str:
        """The lender."""
        return self.config.tenant_id

    @property
    def version(self) -> int:
        """The configuration version this view was parsed from."""
        return self.config.version

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> LenderView:
        """Parse a stored document: LenderConfig fields plus the optional JSON parts."""
        try:
            config = LenderConfig.from_dict(document)
        except (LenderConfigError, ValueError, KeyError) as exc:
            raise LenderViewError(str(exc)) from None
        delinquency, pricing, funders = parse_extensions(document)
        return cls(config, delinquency, pricing, funders)

    @classmethod
    def default(cls, tenant_id: str) -> LenderView:
        """A lender that has not published a configuration: default config and policies."""
        return cls(default_lender_config(tenant_id))

    def approve_below_for(self, purpose: str, taxonomy: GreenTaxonomy) -> float:
        """The approval threshold of this purpose (raised by the green bonus for green ones)."""
        return approve_below_for(
            self.pricing,
            self.config.approve_below,
            purpose,
            taxonomy,
            decline_at_or_above=self.config.decline_at_or_above,
        )


class LenderViews:
    """Parses each tenant's stored document once per version; no I/O (the caller reads)."""

    def __init__(self) -> None:
        """Start with no tenant known (every tenant falls back to its default view)."""
        self._views: dict[str, LenderView] = {}

    def update(self, tenant_id: str, document: Mapping[str, Any] | None) -> LenderView:
        """The view of the stored document; re-parsed only when its version changes.

        None (nothing stored): the current view, else the default. An invalid document
        keeps the tenant's current view (the config agent stores only validated documents,
        so this is a guard against a hand-edited store, logged as an error).
        """
        current = self._views.get(tenant_id)
        if document is None:
            view = current or LenderView.default(tenant_id)
        elif current is not None and document.get("version") == current.version:
            view = current
        else:
            try:
                view = LenderView.from_document(document)
            except LenderViewError as exc:
                log.error("stored config of %s invalid: %s", tenant_id, exc)
                view = current or LenderView.default(tenant_id)
        self._views[tenant_id] = view
        return view

    def get(self, tenant_id: str) -> LenderView:
        """The tenant's current view (the default until a document was seen)."""
        view = self._views.get(tenant_id)
        if view is None:
            view = self._views[tenant_id] = LenderView.default(tenant_id)
        return view
