"""Rate limits (token buckets in memory), the bound on concurrent LLM calls, and the LLM deadline."""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

from rag.api.errors import ApiError
from rag.errors import UpstreamError

T = TypeVar("T")

# Past this many tracked clients, buckets that have refilled completely are forgotten (they hold no state
# that a fresh bucket would not), so a flood of addresses cannot grow memory without bound.
_PRUNE_AT = 10_000


class RateLimiter:
    """Token buckets: `per_minute` requests in a burst, refilled at `per_minute` per minute.

    One process, one memory: behind several replicas each has its own buckets.
    """

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, updated at)

    @property
    def enabled(self) -> bool:
        """False when the limit is 0 (or negative): nothing is limited."""
        return self.capacity > 0

    def _level(self, name: str, now: float) -> float:
        tokens, at = self._buckets.get(name, (self.capacity, now))
        return min(self.capacity, tokens + (now - at) * self.rate)

    def take(self, names: Sequence[str]) -> float | None:
        """Take one token from every named bucket, or none at all: None when allowed, else seconds to wait."""
        if not self.enabled:
            return None
        now = self.clock()
        levels = {name: self._level(name, now) for name in names}
        short = [name for name, level in levels.items() if level < 1.0]
        if short:
            return max((1.0 - levels[name]) / self.rate for name in short)
        for name, level in levels.items():
            self._buckets[name] = (level - 1.0, now)
        if len(self._buckets) > _PRUNE_AT:
            self._prune(now)
        return None

    def wait(self, name: str) -> float | None:
        """Seconds until the named bucket holds a token again, or None when it has one (nothing is taken)."""
        if not self.enabled:
            return None
        level = self._level(name, self.clock())
        return None if level >= 1.0 else (1.0 - level) / self.rate

    def check(self, names: Sequence[str]) -> None:
        """`take`, raising 429 with Retry-After when any bucket is empty."""
        wait = self.take(names)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            raise ApiError(
                429,
                "rate_limited",
                f"too many questions; try again in {seconds} s",
                {"Retry-After": str(seconds)},
            )

    def _prune(self, now: float) -> None:
        full = [name for name in self._buckets if self._level(name, now) >= self.capacity]
        for name in full:
            del self._buckets[name]


class LlmGate:
    """At most `limit` LLM answers in flight; a request that cannot get a slot in `wait` seconds gets a 503."""

    def __init__(self, limit: int, wait: float) -> None:
        self.limit = max(1, limit)
        self.wait = wait
        # asyncio primitives belong to one event loop; tests run several apps and loops in one process.
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        sem = self._semaphores.get(loop)
        if sem is None:
            sem = self._semaphores[loop] = asyncio.Semaphore(self.limit)
        return sem

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the slots for the duration of the block."""
        sem = self._semaphore()
        try:
            async with asyncio.timeout(self.wait):
                await sem.acquire()
        except TimeoutError:
            raise ApiError(
                503,
                "busy",
                f"all {self.limit} LLM slots are busy; try again shortly",
                {"Retry-After": "5"},
            ) from None
        try:
            yield
        finally:
            sem.release()


def llm_deadline(timeout: float, retries: int) -> float:
    """Longest silence allowed from an LLM answer: the SDK's own timeout per attempt, times the attempts,
    plus its backoff between them (0.5 s doubling, capped; 2 s each is an upper bound for the first few)."""
    return timeout * (retries + 1) + 2.0 * retries


async def with_idle_timeout(events: AsyncIterator[T], seconds: float) -> AsyncIterator[T]:
    """Pass `events` through, failing with a 504-mapped UpstreamError when none arrives for `seconds`.

    A per-event deadline (not one for the whole answer) lets long answers stream while a stalled model is cut
    off; cancelling the wait cancels the model call beneath it.
    """
    iterator = aiter(events)
    try:
        while True:
            try:
                async with asyncio.timeout(seconds):
                    event = await anext(iterator)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise UpstreamError(
                    f"the LLM did not answer within {seconds:g} s: raise RAG_LLM_TIMEOUT or check the LLM server",
                    status=504,
                ) from None
            yield event
    finally:
        closer = getattr(iterator, "aclose", None)
        if closer is not None:
            await closer()
