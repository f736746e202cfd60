"""Redis calls with exponential backoff, shared by every processor of a worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from redis.exceptions import RedisError

from greencredit.settings import Settings

__all__ = ["RedisUnavailable", "Retry"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class RedisUnavailable(RuntimeError):
    """Redis did not answer after the configured retries."""


@dataclass(frozen=True)
class Retry:
    """How often and how patiently a store call is tried (REDIS_RETRY_* settings)."""

    attempts: int
    base_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Retry:
        """The worker's retry policy."""
        return cls(settings.redis_retry_attempts, settings.redis_retry_base_s)

    async def __call__(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run a store call with backoff; RedisUnavailable when it keeps failing."""
        delay = self.base_s
        for attempt in range(1, self.attempts + 1):
            try:
                return await call()
            except (RedisError, OSError) as exc:
                if attempt == self.attempts:
                    raise RedisUnavailable(f"{what}: {type(exc).__name__}") from None
                log.warning("redis %s failed (%s), retry %d", what, type(exc).__name__, attempt)
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")
