"""Whose transaction goes next (storage.turns): first come first served, an urgent one (an HTTP
answer waits on it) before queued background work, never two urgent turns in a row while
background work waits, and a waiter that gives up neither keeps nor loses a turn."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from storage.db import Database
from storage.turns import Turns


async def _hold(turn: AbstractAsyncContextManager[object], gate: asyncio.Event) -> None:
    async with turn:
        await gate.wait()


async def _until(condition: Callable[[], bool]) -> None:
    """Wait (by the state, not a guessed delay: CI's machine is busy) until ``condition`` holds."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held in 20 s")


async def _order(turns: Turns, plan: list[tuple[str, bool]]) -> list[str]:
    """Hold the only turn, queue ``plan`` (name, urgent) in that order, then let go: the order
    in which they got their turns."""
    served: list[str] = []
    gate = asyncio.Event()

    async def waiter(name: str, urgent: bool) -> None:
        async with turns.turn(urgent=urgent):
            served.append(name)
            await asyncio.sleep(0)

    first = asyncio.create_task(_hold(turns.turn(), gate))
    await asyncio.sleep(0)
    tasks = []
    for name, urgent in plan:
        tasks.append(asyncio.create_task(waiter(name, urgent)))
        await asyncio.sleep(0)  # queued in this order
    gate.set()
    await asyncio.gather(first, *tasks)
    return served


async def test_first_come_first_served_without_urgent_ones() -> None:
    plan = [("a", False), ("b", False), ("c", False)]
    assert await _order(Turns(1), plan) == ["a", "b", "c"]


async def test_an_urgent_transaction_goes_before_queued_background_work() -> None:
    plan = [("a", False), ("b", False), ("hook", True)]
    assert await _order(Turns(1), plan) == ["hook", "a", "b"]


async def test_urgent_ones_alternate_with_waiting_background_work() -> None:
    plan = [("a", False), ("b", False), ("h1", True), ("h2", True), ("h3", True)]
    assert await _order(Turns(1), plan) == ["h1", "a", "h2", "b", "h3"]


async def test_a_waiter_that_gives_up_keeps_no_turn() -> None:
    turns = Turns(1)
    gate = asyncio.Event()
    held = asyncio.create_task(_hold(turns.turn(), gate))
    await asyncio.sleep(0)
    quitter = asyncio.create_task(turns.turn(urgent=True).__aenter__())
    await asyncio.sleep(0)
    quitter.cancel()
    gate.set()
    await held
    assert turns.free == 1
    async with turns.turn():
        assert turns.free == 0
    assert turns.free == 1


async def test_several_slots_are_shared_and_given_back() -> None:
    turns = Turns(2)
    inside = 0
    most = 0

    async def work(urgent: bool) -> None:
        nonlocal inside, most
        async with turns.turn(urgent=urgent):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(work(n % 3 == 0) for n in range(12)))
    assert most == 2 and turns.free == 2


async def test_an_urgent_transaction_of_the_database_passes_queued_writers(
    database: Database,
) -> None:
    """Through Database.transaction, on SQLite (one writer) and PostgreSQL (its pool's size)."""
    capacity = database._capacity
    assert capacity is not None
    served: list[str] = []
    gate = asyncio.Event()

    async def write(name: str, urgent: bool) -> None:
        async with database.transaction(urgent=urgent):
            served.append(name)

    loop = asyncio.get_running_loop()
    holders = [asyncio.create_task(_hold(database.transaction(), gate)) for _ in range(capacity)]
    await _until(lambda: (t := database._turns.get(loop)) is not None and t.free == 0)
    turns = database._turns[loop]
    background = asyncio.create_task(write("background", False))
    await _until(lambda: len(turns._other) == 1)  # queued behind the holders
    urgent = asyncio.create_task(write("urgent", True))
    await _until(lambda: len(turns._urgent) == 1)
    gate.set()
    await asyncio.gather(*holders, background, urgent)
    assert served == ["urgent", "background"]
