"""The Teams tenant budget (:class:`adapters.teams.window.SlidingWindow`): at most ``count``
calls in any ``seconds`` as the platform counts them (on arrival), whatever the network's
delays, with the whole budget usable at once."""

from __future__ import annotations

import asyncio
import random

import pytest

from adapters.teams.window import SlidingWindow


def _most_in_any_window(times: list[float], seconds: float) -> int:
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + seconds) for i, start in enumerate(times))


async def test_the_whole_budget_goes_at_once() -> None:
    window = SlidingWindow(5, 60.0)
    started: list[int] = []

    async def call(n: int) -> None:
        async with window.slot():
            started.append(n)

    tasks = [asyncio.create_task(call(n)) for n in range(6)]
    await asyncio.sleep(0.05)
    assert started == [0, 1, 2, 3, 4]  # in order, none held back; the sixth waits a minute
    tasks[5].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_call_counts_from_its_answer_and_holds_its_place_until_then() -> None:
    loop = asyncio.get_running_loop()
    window = SlidingWindow(1, 0.1)
    answered: list[float] = []
    started: list[float] = []

    async def call(answer_after: float) -> None:
        async with window.slot():
            started.append(loop.time())
            await asyncio.sleep(answer_after)
        answered.append(loop.time())

    await asyncio.gather(call(0.2), call(0.0))
    # A token bucket would start the second call 0.1 s after the first one started; it may
    # only start 0.1 s after the first one's answer (the first may have arrived just then).
    assert started[1] - answered[0] >= 0.1 - 0.005


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_arrivals_never_exceed_the_window_whatever_the_delays(seed: int) -> None:
    """Calls from 8 concurrent senders arrive after a random delay (a new connection, a busy
    loop) and are answered after another; the platform, counting arrivals, never sees more
    than ``count`` in any ``seconds``."""
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    window = SlidingWindow(4, 0.1)
    arrivals: list[float] = []
    queue = list(range(40))

    async def sender() -> None:
        while queue:
            queue.pop()
            async with window.slot():
                await asyncio.sleep(rng.choice([0.0, 0.001, 0.03]))
                arrivals.append(loop.time())
                await asyncio.sleep(rng.choice([0.0, 0.02]))

    await asyncio.gather(*(sender() for _ in range(8)))
    assert len(arrivals) == 40
    assert _most_in_any_window(arrivals, 0.1) <= 4


async def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="count"):
        SlidingWindow(0, 1.0)
    with pytest.raises(ValueError, match="seconds"):
        SlidingWindow(5, 0.0)
