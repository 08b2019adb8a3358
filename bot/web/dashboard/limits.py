"""Sign-in attempts per client address and per account, in a sliding ten-minute window.

Kept in this process's memory: with several replicas each counts its own share, which still
caps a guesser at (replicas x limit) attempts per window against 256-bit tokens."""

from __future__ import annotations

import time
from collections import deque

WINDOW_SECONDS = 600.0
MAX_KEYS = 50_000  # past this, the oldest keys are forgotten (a flood of addresses)


class AttemptLimiter:
    def __init__(self, per_ip: int, per_account: int) -> None:
        self.per_ip = per_ip
        self.per_account = per_account
        self._hits: dict[str, deque[float]] = {}

    def _count(self, key: str, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= MAX_KEYS:
                for old in list(self._hits)[: MAX_KEYS // 10]:
                    del self._hits[old]
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - WINDOW_SECONDS:
            hits.popleft()
        return hits

    def allow(self, ip: str, account: str | None = None) -> bool:
        """Count one attempt; False (and not counted) when the address or account is over."""
        now = time.monotonic()
        keys = [(f"ip:{ip}", self.per_ip)]
        if account is not None:
            keys.append((f"account:{account}", self.per_account))
        counted = [(self._count(key, now), limit) for key, limit in keys]
        if any(len(hits) >= limit for hits, limit in counted):
            return False
        for hits, _ in counted:
            hits.append(now)
        return True
