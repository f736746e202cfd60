"""What one worker holds for its processors; each processor is handed only its own part.

The runtime builds every processor's dependency object from these once, when the worker's
engine starts (see Runtime.attach); processors never see the whole set, so the processor
tests can hand them in-memory stores and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from greencredit.infra.stores import EngineStateStore, FeatureStoreProtocol, LoanStoreProtocol
from greencredit.models.scoring import ApplicationScorer
from greencredit.settings import Settings

from .face_check import FaceChecker
from .lender_cache import LenderCaches
from .messages import Decoder
from .retry import Retry

__all__ = ["Resources"]


@dataclass(frozen=True)
class Resources:
    """A worker's decoder, retry policy, stores, face checker, scorer, caches and PII key."""

    settings: Settings
    decoder: Decoder
    retry: Retry
    state: EngineStateStore
    features: FeatureStoreProtocol
    loans: LoanStoreProtocol
    faces: FaceChecker
    scorer: ApplicationScorer
    lenders: LenderCaches
    pii_key: bytes
