"""Face verification for applications: embed, match the blacklist, check liveness.

Images arrive inside the application (`face_image`, `liveness_frames`), are decoded and
embedded in a worker thread (OpenCV and onnxruntime release the GIL), and are dropped:
only the outcome — an indicator, hard flags and reason codes — leaves this module. A face
that cannot be checked never blocks the stream: it becomes a reason code and a review.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from greencredit.infra.face_blacklist import FaceBlacklist
from greencredit.models.face import FaceEmbedder, FaceError, liveness
from greencredit.models.fusion import HardFlag

__all__ = ["FaceChecker", "FaceOutcome"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaceOutcome:
    """What the face check says about one application (no image, no embedding)."""

    face_risk: float | None
    flags: frozenset[HardFlag] = frozenset()
    codes: tuple[str, ...] = ()
    blacklist_entry_id: str | None = None
    similarity: float | None = None


@dataclass(frozen=True)
class _Analysis:
    embedding: np.ndarray | None
    error: str | None
    liveness_codes: tuple[str, ...]


class FaceChecker:
    """One per worker: the embedder (loaded once) and the Redis blacklist."""

    def __init__(
        self, embedder: FaceEmbedder | None, blacklist: FaceBlacklist, max_image_bytes: int
    ) -> None:
        self.embedder = embedder
        self.blacklist = blacklist
        self.max_image_bytes = max_image_bytes

    def _analyse(self, image: bytes, frames: list[bytes]) -> _Analysis:
        assert self.embedder is not None  # noqa: S101 - checked by the caller
        try:
            if len(image) > self.max_image_bytes:
                return _Analysis(None, "IMAGE_TOO_LARGE", ())
            embedding = self.embedder.embed_image(image)
        except FaceError as exc:
            return _Analysis(None, exc.reason, ())
        codes: tuple[str, ...] = ()
        if frames:
            result = liveness(frames)
            if not result.live:
                codes = (f"LIVENESS_{result.reason}".upper(),)
        return _Analysis(embedding, None, codes)

    async def check(self, applications: list[dict[str, Any]]) -> list[FaceOutcome | None]:
        """One outcome per application; None where no face image was sent."""
        wanted = [i for i, a in enumerate(applications) if a.get("face_image")]
        outcomes: list[FaceOutcome | None] = [None] * len(applications)
        if not wanted:
            return outcomes
        if self.embedder is None:
            for i in wanted:
                outcomes[i] = FaceOutcome(
                    None, frozenset({HardFlag.FACE_UNVERIFIED}), ("FACE_MODEL_UNAVAILABLE",)
                )
            return outcomes
        analyses = await asyncio.gather(
            *(
                asyncio.to_thread(
                    self._analyse,
                    applications[i]["face_image"],
                    list(applications[i].get("liveness_frames") or []),
                )
                for i in wanted
            )
        )
        embedded = [
            (i, a) for i, a in zip(wanted, analyses, strict=True) if a.embedding is not None
        ]
        matches: list[Any] = []
        if embedded:
            matcher = await self.blacklist.matcher(threshold=self.embedder.threshold)
            vectors = [a.embedding for _, a in embedded if a.embedding is not None]
            matches = matcher.best_match(np.stack(vectors))
        match_of = {i: m for (i, _), m in zip(embedded, matches, strict=True)}
        for i, analysis in zip(wanted, analyses, strict=True):
            if analysis.error is not None:
                outcomes[i] = FaceOutcome(
                    None, frozenset({HardFlag.FACE_UNVERIFIED}), (f"FACE_{analysis.error}",)
                )
                continue
            flags: set[HardFlag] = set()
            if analysis.liveness_codes:
                flags.add(HardFlag.LIVENESS_FAILED)
            match = match_of.get(i)
            if match is not None:
                flags.add(HardFlag.FACE_BLACKLIST_HIT)
                outcomes[i] = FaceOutcome(
                    1.0,
                    frozenset(flags),
                    analysis.liveness_codes,
                    match.entry_id,
                    float(match.similarity),
                )
            else:
                outcomes[i] = FaceOutcome(0.0, frozenset(flags), analysis.liveness_codes)
        return outcomes
