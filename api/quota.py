"""The push quota: a token bucket per API key, in memory, counting readings.

Each key may push `rate` readings a second on average and `burst` at once; the bucket of
a key holds at most `burst` tokens, refills at `rate` a second, and a batch takes one token
per element. A batch larger than `burst` takes the whole (full) bucket, so it is never
refused for good. A refused batch gets the seconds until its tokens are there (HTTP 429
with ``Retry-After``). The buckets live in one process: each API process counts its own.

Example::

    quota = PushQuota(rate=20_000, burst=200_000)
    quota.take(principal.key_id, len(body.items))  # raises QuotaExceededError
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from meterhub.errors import MeterhubError


class QuotaExceededError(MeterhubError):
    """The key's bucket lacks tokens; ``retry_after`` is the whole seconds until it has them."""

    def __init__(self, *, cost: int, retry_after: int, rate: float, burst: int) -> None:
        super().__init__(
            f"this key may push {rate:g} readings/s (bursts of {burst}); {cost} more must wait "
            f"{retry_after} s"
        )
        self.retry_after = retry_after


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class PushQuota:
    """Token buckets by key id; ``rate <= 0`` turns the quota off."""

    def __init__(
        self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock
        self._buckets: dict[int, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def _bucket(self, key_id: int) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        return bucket

    def _refuse(self, bucket: _Bucket, cost: int) -> QuotaExceededError:
        wait = math.ceil(max(0.0, cost - bucket.tokens) / self.rate)
        retry_after = max(1, wait)
        return QuotaExceededError(
            cost=cost, retry_after=retry_after, rate=self.rate, burst=self.burst
        )

    def check(self, key_id: int) -> None:
        """Refuse at once when the bucket is empty (before the body is read and parsed)."""
        if self.enabled and (bucket := self._bucket(key_id)).tokens < 1:
            raise self._refuse(bucket, 1)

    def take(self, key_id: int, count: int) -> None:
        """Take ``count`` tokens (at most `burst`) or raise `QuotaExceededError`, taking none."""
        if not self.enabled or count <= 0:
            return
        cost = min(count, self.burst)
        bucket = self._bucket(key_id)
        if bucket.tokens < cost:
            raise self._refuse(bucket, cost)
        bucket.tokens -= cost
