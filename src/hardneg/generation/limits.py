"""How many requests one endpoint gets at a time: a limit that backs off the way TCP does.

A server that cannot keep up shows it by dropping connections (a full listen backlog), timing out, or
answering 429 or 503. Sending as much again only makes it worse: the limit on requests in flight is
halved on such a fault and raised by one for each limit's worth of answers, up to ``concurrency``.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hardneg.core.errors import HardnegError
    from hardneg.generation.client import ChatClient


class AdaptiveLimit:
    """Requests in flight to one endpoint (additive increase, multiplicative decrease). It starts at
    ``ceiling``: a server sized for the configured concurrency (the embedded one has exactly that many
    slots) runs at full speed from the first request, and one that is not pays a few halvings.

    Each request notes the ``epoch`` (the number of decreases so far) it was sent in: faults of
    requests sent before the last decrease were sent at the old limit and are already answered for,
    so a burst of faults halves the limit once, not once per fault (TCP: one decrease per window)."""

    def __init__(self, ceiling: int):
        self.ceiling = self.limit = self.lowest = ceiling
        self.epoch = 0
        """Times lowered."""
        self._answers = 0
        self._answered_since_lowered = False

    def answered(self) -> bool:
        """Count an answer; True when it raised the limit (one more request may go)."""
        self._answered_since_lowered = True
        self._answers += 1
        if self._answers < self.limit or self.limit >= self.ceiling:
            return False
        self._answers = 0
        self.limit += 1
        return True

    def overloaded(self, epoch: int) -> bool:
        """Halve the limit for a fault of a request sent in ``epoch`` if that is the current one.
        True when the lowered limit has not helped (no answer since it was lowered): the endpoint
        is down rather than busy, and should sit out a cool-down."""
        if epoch != self.epoch:
            return False
        stalled = self.epoch > 0 and not self._answered_since_lowered
        self.limit = max(1, self.limit // 2)
        self.lowest = min(self.lowest, self.limit)
        self.epoch += 1
        self._answers, self._answered_since_lowered = 0, False
        return stalled

    def counts(self) -> dict[str, int]:
        """For the manifest: the lowest and final limit, and how often it was lowered."""
        return {"limit_final": self.limit, "limit_lowest": self.lowest, "limit_lowered": self.epoch}


@dataclass
class Endpoint:
    """One server of a pool: its client, its limit, and its cool-down."""

    client: ChatClient
    limit: AdaptiveLimit
    in_flight: int = 0
    failures: int = 0
    """Consecutive cool-downs: each doubles the next, up to ``backoff_max``; an answer resets it."""
    ready_at: float = 0.0
    refused: HardnegError | None = None
    """Its last 4xx refusal, until it answers again."""
    counts: Counter = field(default_factory=Counter)

    def open(self, now: float) -> bool:
        """Takes one more request: not cooling down, and below its limit (one trial request while
        it is back from a cool-down)."""
        return self.ready_at <= now and self.in_flight < (1 if self.failures else self.limit.limit)

    def set_back(self, fault: Any, epoch: int) -> bool:
        """After ``fault`` (a client.Retryable) of a request sent in ``epoch``: lower the limit on a sign
        of overload; cool down when the endpoint looks down rather than busy (the lowered limit brought
        no answer, a timeout, another 5xx, a refusal, a Retry-After to honour). Many requests failing
        at once count as one. True when it cools down."""
        now = asyncio.get_running_loop().time()
        if self.ready_at > now:
            return True  # already cooling down: the same failure
        stalled = False
        if fault.overload and not self.failures:  # back from a cool-down, the cool-down backs off
            stalled = self.limit.overloaded(epoch)
        busy = fault.overload and fault.kind != "timeout" and fault.retry_after is None
        if busy and not stalled and not self.failures:
            return False
        self.ready_at = now + self.client.delay(self.failures, fault.retry_after)
        self.failures += 1
        return True


class Waiters:
    """Tasks waiting for an endpoint to take a request, woken one per freed slot (no polling: a fast
    server's answers would otherwise sit out the poll interval)."""

    def __init__(self) -> None:
        self._queue: deque[asyncio.Future] = deque()

    async def wait(self, timeout: float | None) -> None:
        """Until woken, or ``timeout`` seconds (a cool-down ending)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append(future)
        timer = None if timeout is None else loop.call_later(max(timeout, 0.0), _settle, future)
        try:
            await future
        finally:
            if timer is not None:
                timer.cancel()

    def wake(self, count: int = 1) -> None:
        while count > 0 and self._queue:
            future = self._queue.popleft()
            if not future.done():
                future.set_result(None)
                count -= 1

    def wake_all(self) -> None:
        self.wake(len(self._queue))


def _settle(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
