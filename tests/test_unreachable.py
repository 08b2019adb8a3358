"""A member the platform will not let syncup DM (closed DMs, a deactivated account).

The real delivery worker sends through a small port that refuses some members' DMs with
:class:`RecipientUnreachable`: the dead-lettered prompt marks the member unreachable, the report
lists them apart from those who have not answered, the owner hears about it exactly once per run,
and no reminder is sent. A plain permanent refusal (a report post in a channel the bot left, a
DM refused for another reason) marks nobody. On SQLite and PostgreSQL, on a FakeClock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.chat import MESSAGE_ADAPTER, Message
from bot.delivery.worker import DeadLetter, DeliveryWorker
from bot.features.standups import unreachable
from bot.features.standups.history import history, stats
from bot.port import (
    Delivery,
    Method,
    PermanentDeliveryError,
    RateLimit,
    Receipt,
    RecipientUnreachable,
    Target,
)
from storage.db import Database
from storage.models import Member, OutboxStatus, PromptStatus, Standup
from tests.test_delivery import settings
from tests.test_standup_runtime import (
    MONDAY,
    World,
    local_nine,
    render,
    running_standups,
)

FAST = RateLimit(rate=1000.0, burst=1000)


class RefusingPort:
    """Accepts everything except DMs to ``closed`` members (refused as unreachable), DMs to
    ``refused`` members (a plain permanent refusal) and, with ``refuse_posts``, channel posts."""

    platform = "test"

    def __init__(self) -> None:
        self.closed: set[str] = set()
        self.refused: set[str] = set()
        self.refuse_posts = False
        self.sent: list[Delivery] = []

    def rate_limits(self) -> Mapping[Method, RateLimit]:
        return dict.fromkeys(Method, FAST)

    def channel_rate_limit(self) -> RateLimit | None:
        return None

    async def deliver(self, delivery: Delivery) -> Receipt:
        user = delivery.target.user_id
        if delivery.method is Method.DM and user in self.closed:
            raise RecipientUnreachable(f"dm {delivery.outbox_id}: DMs closed (Discord 50007)")
        if delivery.method is Method.DM and user in self.refused:
            raise PermanentDeliveryError("slack: invalid_blocks")
        if delivery.method is Method.POST and self.refuse_posts:
            raise PermanentDeliveryError("slack: not_in_channel")
        self.sent.append(delivery)
        channel = delivery.target.channel_id or f"D-{user}"
        message_id = delivery.target.message_id or f"m{delivery.outbox_id}"
        return Receipt(channel_id=channel, message_id=message_id)


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with running_standups(database) as built:
        yield built


@pytest.fixture
def port() -> RefusingPort:
    return RefusingPort()


@pytest.fixture
async def worker(world: World, port: RefusingPort) -> DeliveryWorker:
    worker = DeliveryWorker(world.db, port, settings(), clock=world.clock, instance="t")
    unreachable.register(world.core, worker)
    return worker


async def deliver(world: World, worker: DeliveryWorker) -> None:
    """Send everything due, with what it causes (the refresh after a dead letter, the owner's
    DM, the report's update), until nothing is left to do."""
    for _ in range(20):
        await world.core.idle()
        if not await worker.run_once():
            await world.core.idle()
            if not await worker.run_once():
                return


async def status(world: World, name: str) -> PromptStatus:
    return PromptStatus((await world.prompt(name)).status)


async def parent_report(world: World) -> str:
    """The report's parent as it reads now: the latest post or update of it."""
    rows = [
        r
        for r in await world.posts()
        if r.idempotency_key.endswith(":report") or ":report:v" in r.idempotency_key
    ]
    assert rows, "no report yet"
    return render(rows[-1].payload)


async def test_a_member_with_closed_dms_is_unreachable(
    world: World, worker: DeliveryWorker, port: RefusingPort
) -> None:
    port.closed.add("bob")
    await world.add_standup(
        ["alice", "bob", "carol"], owner_id=world.members["alice"], reminder_minutes=30
    )
    await world.advance_to(local_nine())
    await deliver(world, worker)

    assert await status(world, "bob") == PromptStatus.UNREACHABLE
    assert (await world.prompt("bob")).step is None  # no DM conversation open
    assert await status(world, "carol") == PromptStatus.PENDING
    notices = [dm for dm in await world.dms("alice") if "I can't DM" in dm]
    assert notices == [
        "I can't DM @bob (their DMs are closed or their account is inactive): they are shown "
        "as unreachable in Daily (Mon 9 Mar).\n"
        "Fix: ask them to allow direct messages from syncup (or to reactivate their account), "
        "or take them out with /standup edit Daily.\n"
        "The platform said: dm 2: DMs closed (Discord 50007)"
    ]
    rows = {r.idempotency_key: r for r in await world.outbox()}
    owner_rows = [k for k in rows if k.endswith(f":unreachable:{world.members['bob']}:owner")]
    assert len(owner_rows) == 1 and rows[owner_rows[0]].status == OutboxStatus.SENT

    # alice answers: the report shows bob apart, not among those who have not answered.
    await world.answer("alice", "Shipped it", "Docs", "no")
    await deliver(world, worker)
    report = await parent_report(world)
    assert "Heard from 1 of 3." in report
    assert "Not answered yet: carol" in report
    assert "Unreachable (I can't DM them): bob" in report
    assert "bob" not in report.split("Not answered yet: ")[1].split("\n")[0]

    # The reminder goes to carol only.
    await world.advance_to(local_nine() + timedelta(minutes=31))
    await deliver(world, worker)
    reminders = [r for r in await world.outbox() if ":remind:" in r.idempotency_key]
    assert [r.target["user_id"] for r in reminders] == ["carol"]
    assert [dm for dm in await world.dms("bob") if "A reminder" in dm] == []

    # The same refusal told again (a second replica, a retried callback): nothing more.
    prompt_dm = next(
        r
        for r in await world.outbox()
        if r.method == "dm" and r.target.get("user_id") == "bob" and ":prompt:" in r.idempotency_key
    )
    dead = DeadLetter(
        prompt_dm.id,
        prompt_dm.idempotency_key,
        prompt_dm.workspace_id,
        "T1",
        Method.DM,
        Target(user_id="bob"),
        "RecipientUnreachable: again",
        unreachable=True,
    )
    await worker.on_dead_letter[0](dead)
    await deliver(world, worker)
    assert len([dm for dm in await world.dms("alice") if "I can't DM" in dm]) == 1


async def test_closing_the_window_says_not_answered_and_unreachable_apart(
    world: World, worker: DeliveryWorker, port: RefusingPort
) -> None:
    port.closed.update({"bob", "dana"})
    await world.add_standup(["alice", "bob", "carol", "dana"], owner_id=world.members["alice"])
    await world.advance_to(local_nine())
    await deliver(world, worker)
    await world.advance_to(local_nine() + timedelta(hours=4, minutes=1))  # the window's end
    await deliver(world, worker)
    report = await parent_report(world)
    assert "Heard from 0 of 4.\nNot answered: alice, carol\n" in report
    assert "Unreachable (I can't DM them): bob, dana" in report
    # One notice per unreachable member (in either order: DMs to two members go side by side).
    notices = [dm for dm in await world.dms("alice") if "I can't DM" in dm]
    assert len(notices) == 2
    assert sorted("@bob" in n for n in notices) == [False, True]
    assert sorted("@dana" in n for n in notices) == [False, True]


async def test_the_owner_with_closed_dms_gets_no_notice(
    world: World, worker: DeliveryWorker, port: RefusingPort
) -> None:
    port.closed.add("alice")
    await world.add_standup(["alice", "bob"], owner_id=world.members["alice"])
    await world.advance_to(local_nine())
    await deliver(world, worker)
    assert await status(world, "alice") == PromptStatus.UNREACHABLE
    assert [r for r in await world.outbox() if ":unreachable:" in r.idempotency_key] == []


async def test_a_plain_permanent_error_marks_nobody(
    world: World, worker: DeliveryWorker, port: RefusingPort
) -> None:
    port.refuse_posts = True
    port.refused.add("carol")  # her prompt is refused, but not because she can't be reached
    await world.add_standup(["alice", "bob", "carol"], owner_id=world.members["alice"])
    await world.advance_to(local_nine())
    await deliver(world, worker)
    await world.answer("alice", "Shipped it", "Docs", "no")
    await deliver(world, worker)

    rows = await world.outbox()
    dead = [r for r in rows if r.status == OutboxStatus.DEAD]
    assert {r.method for r in dead} == {"post", "dm"}  # the report and carol's prompt
    assert all("RecipientUnreachable" not in (r.last_error or "") for r in dead)
    assert await status(world, "carol") == PromptStatus.PENDING
    assert await status(world, "bob") == PromptStatus.PENDING
    assert [r for r in rows if ":unreachable:" in r.idempotency_key] == []


async def test_a_failing_callback_does_not_stop_the_worker(
    world: World, worker: DeliveryWorker, port: RefusingPort
) -> None:
    seen: list[DeadLetter] = []

    async def broken(dead: DeadLetter) -> None:
        seen.append(dead)
        raise RuntimeError("a bug in a feature")

    worker.on_dead_letter.insert(0, broken)
    port.closed.add("bob")
    await world.add_standup(["alice", "bob"], owner_id=world.members["alice"])
    await world.advance_to(local_nine())
    await deliver(world, worker)
    assert [(d.method, d.target.user_id, d.unreachable) for d in seen] == [(Method.DM, "bob", True)]
    assert seen[0].error.startswith("RecipientUnreachable: ")
    # The next callback still ran, and alice's prompt went out.
    assert await status(world, "bob") == PromptStatus.UNREACHABLE
    assert any(d.target.user_id == "alice" for d in port.sent)
    async with world.db.transaction() as session:
        assert await session.scalar(select(Standup.id)) is not None


async def test_history_and_stats_say_unreachable(
    world: World, worker: DeliveryWorker, port: RefusingPort
) -> None:
    port.closed.add("bob")
    await world.add_standup(["alice", "bob"], owner_id=world.members["alice"])
    await world.advance_to(local_nine())
    await deliver(world, worker)
    await world.advance_to(local_nine() + timedelta(days=1, hours=1))
    async with world.db.transaction() as session:
        bob = await session.get(Member, world.members["bob"])
        assert bob is not None
        past = await history(session, world.workspace_id, bob, 7, world.clock.now())
        numbers = await stats(session, world.workspace_id, world.clock.now())
    assert "Could not be reached (DMs closed)" in render_message(past)
    text = render_message(numbers)
    assert "bob: 0 of 1 answered (0%) · 1 unreachable" in text
    assert "Unreachable: syncup could not DM them" in text
    assert MONDAY.isoformat() in render_message(past)


def render_message(msg: Message) -> str:
    return render(MESSAGE_ADAPTER.dump_python(msg, mode="json"))
