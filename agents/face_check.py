"""Face verification for applications: embed, match the blacklist, check liveness.

Images arrive inside the application (`face_image`, `liveness_frames`), are decoded,
detected, aligned and embedded in a small bounded thread pool of this worker (OpenCV and
onnxruntime release the GIL), so a batch of selfies never holds the event loop that also
runs the transaction and device streams. Images are dropped after the check: only the
outcome (an indicator, hard flags, reason codes, the matched entry and similarity) leaves
this module. A face that cannot be checked never blocks the stream: it becomes a reason
code and a review.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
    """One per worker: the embedder (loaded once), the Redis blacklist and the thread pool."""

    def __init__(
        self,
        embedder: FaceEmbedder | None,
        blacklist: FaceBlacklist,
        max_image_bytes: int,
        threads: int = 1,
    ) -> None:
        """``threads`` bounds the selfies analysed at once (and the cores they take)."""
        self.embedder = embedder
        self.blacklist = blacklist
        self.max_image_bytes = max_image_bytes
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="face-check")

    def close(self) -> None:
        """Stop the pool's threads (pending checks finish first)."""
        self._pool.shutdown(wait=True)

    def _analyse(self, image: bytes, frames: list[bytes]) -> _Analysis:
        assert self.embedder is not None  # noqa: S101 - checked by the caller
        try:
            if len(image) > self.max_image_bytes:
                return _Analysis(None, "IMAGE_TOO_LARGE", ())
            embedding = self.embedder.embed_image(image, self.max_image_bytes)
        except FaceError as exc:
            return _Analysis(None, exc.reason, ())
        codes: tuple[str, ...] = ()
        if frames:
            result = liveness(frames, self.embedder.detector)
            if not result.live:
                codes = (f"LIVENESS_{result.reason}".upper(),)
        return _Analysis(embedding, None, codes)

    def thresholds(self, override: float | None) -> tuple[float, float]:
        """(match, review) thresholds: the shipped ones, or a lender's override.

        An override moves the match threshold; the near-miss band keeps its shipped width.
        """
        assert self.embedder is not None  # noqa: S101 - checked by the caller
        match, review = self.embedder.threshold, self.embedder.review_threshold
        if override is None:
            return match, review
        return override, max(-1.0, override - (match - review))

    async def check(
        self,
        applications: list[dict[str, Any]],
        match_thresholds: Sequence[float | None] | None = None,
    ) -> list[FaceOutcome | None]:
        """One outcome per application; None where no face image was sent.

        ``match_thresholds`` holds each application's lender override (None: shipped).
        """
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
        loop = asyncio.get_running_loop()
        analyses = await asyncio.gather(
            *(
                loop.run_in_executor(
                    self._pool,
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
        overrides = list(match_thresholds or [None] * len(applications))
        best: dict[int, Any] = {}
        if embedded:
            # Threshold -1: the nearest entry of every selfie, judged per lender below.
            matcher = await self.blacklist.matcher(threshold=-1.0)
            vectors = np.stack([a.embedding for _, a in embedded if a.embedding is not None])
            nearest = await loop.run_in_executor(self._pool, matcher.best_match, vectors)
            best = dict(zip((i for i, _ in embedded), nearest, strict=True))
        for i, analysis in zip(wanted, analyses, strict=True):
            if analysis.error is not None:
                outcomes[i] = FaceOutcome(
                    None, frozenset({HardFlag.FACE_UNVERIFIED}), (f"FACE_{analysis.error}",)
                )
                continue
            flags: set[HardFlag] = set()
            if analysis.liveness_codes:
                flags.add(HardFlag.LIVENESS_FAILED)
            match = best.get(i)
            threshold, review = self.thresholds(overrides[i])
            if match is not None and match.similarity >= threshold:
                flags.add(HardFlag.FACE_BLACKLIST_HIT)
                risk = 1.0
            elif match is not None and match.similarity >= review:
                flags.add(HardFlag.FACE_BLACKLIST_NEAR_MISS)
                risk = float(match.similarity)
            else:
                outcomes[i] = FaceOutcome(0.0, frozenset(flags), analysis.liveness_codes)
                continue
            outcomes[i] = FaceOutcome(
                risk,
                frozenset(flags),
                analysis.liveness_codes,
                match.entry_id,
                float(match.similarity),
            )
        return outcomes
