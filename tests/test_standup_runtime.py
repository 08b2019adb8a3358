"""A standup day at run time: prompts, the DM conversation, the answer form, edits, the report
(thread, inline, by question, late answers in place), absences, holidays, reminders, the channel
nudge, cutoff mode, blockers, and user text that must never ping anyone.

Two harnesses: the console (the user's view, through the real App, outbox and worker) on a
database seeded with a standup, and :class:`World`: the core and the scheduler on a FakeClock, on
SQLite and PostgreSQL, with the outbox inspected directly (no worker runs there).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from adapters.console.adapter import DEMO_MEMBERS, dm_channel
from adapters.console.render import Renderer
from bot import directory
from bot.app import App
from bot.chat import MESSAGE_ADAPTER, FormErrors, OpenForm, Reply, Response, SelectField, TextField
from bot.core import Core
from bot.delivery.outbox import decode_message
from bot.errors import UserError
from bot.events import (
    ActionInvocation,
    Actor,
    DirectMessageReceived,
    FormSubmission,
    Origin,
)
from bot.features import blockers
from bot.features.standups import answers, runtime, skips
from bot.features.standups.schedules import PROMPT_HANDLER
from bot.scheduling.scheduler import Scheduler
from storage import migrate
from storage.db import Database
from storage.models import (
    Absence,
    Blocker,
    BlockerStatus,
    Member,
    OccurrenceClaim,
    OutboxMessage,
    PromptStatus,
    Standup,
    StandupAnswer,
    StandupParticipant,
    StandupPrompt,
    StandupRun,
    Workspace,
)
from tests.fakes.clock import FakeClock
from tests.test_console import run_console

PLATFORM = "test"
CHANNEL = "C-standup"
MONDAY = date(2026, 3, 9)  # US DST began the day before; Europe is still on winter time
# 06:00 UTC: 07:00 in Berlin, 02:00 in New York.
START = datetime(2026, 3, 9, 6, tzinfo=UTC)


def q(text: str, kind: str = "text", choices: tuple[str, ...] = (), blocker: bool = False) -> dict:
    return {"text": text, "kind": kind, "choices": list(choices), "blocker": blocker}


QUESTIONS = [
    q("What did you do?"),
    q("What will you do?"),
    q("Anything blocking you?", blocker=True),
]
RICH_QUESTIONS = [
    q("What did you do?"),
    q("What will you do?"),
    q("How did it go?", "choice", ("smooth", "bumpy")),
    q("How do you feel?", "mood"),
    q("Anything blocking you?", blocker=True),
]


def standup_row(workspace_id: int, channel_id: int, now: datetime, **overrides: Any) -> Standup:
    values: dict[str, Any] = {
        "workspace_id": workspace_id,
        "name": "Daily",
        "report_channel_id": channel_id,
        "questions": QUESTIONS,
        "days": [1, 2, 3, 4, 5],
        "every_weeks": 1,
        "anchor_date": date(2026, 3, 2),
        "time_of_day": "09:00",
        "team_timezone": None,
        "reminder_minutes": None,
        "window_minutes": 240,
        "report_mode": "each",
        "report_layout": "thread",
        "group_by": "person",
        "tag_missing": False,
        "channel_nudge": False,
        "holidays": [],
        "paused": False,
        "created_at": now,
        "updated_at": now,
    }
    values.update(overrides)
    return Standup(**values)


def render(payload: dict[str, Any]) -> str:
    """An outbox payload as the console would print it (without the indent)."""
    lines = Renderer().message(decode_message(payload)).lines
    return "\n".join(line.removeprefix("  ") for line in lines)


# -- the service-level harness ---------------------------------------------------------------


@dataclass
class World:
    """The core and the scheduler on a FakeClock over one database, with a workspace, a report
    channel and members (name -> IANA zone)."""

    db: Database
    clock: FakeClock
    core: Core
    scheduler: Scheduler
    workspace_id: int
    channel_id: int
    zones: dict[str, str]
    members: dict[str, int]
    _events: itertools.count = field(default_factory=lambda: itertools.count(1))

    async def add_standup(self, members: list[str], **overrides: Any) -> int:
        async with self.db.transaction() as session:
            standup = standup_row(self.workspace_id, self.channel_id, self.clock.now(), **overrides)
            session.add(standup)
            await session.flush()
            for name in members:
                session.add(StandupParticipant(standup_id=standup.id, member_id=self.members[name]))
            standup_id = standup.id
        await self.scheduler.reconcile()
        return standup_id

    async def advance_to(self, target: datetime) -> None:
        """Move the clock to ``target``, stopping at every booked occurrence on the way, as a
        bot that keeps running would."""
        for _ in range(1000):
            due = [when for _, when in self.scheduler.next_runs() if when <= target]
            if not due:
                break
            self.clock.set(max(min(due), self.clock.now()))
            await self.scheduler.reconcile()
        self.clock.set(target)
        await self.scheduler.reconcile()

    def _origin(self, channel: str | None) -> Origin:
        return Origin(PLATFORM, "T1", f"e{next(self._events)}", "Test", channel)

    def actor(self, name: str) -> Actor:
        return Actor(name, name, self.zones[name])

    async def handle(self, event: Any) -> Response:
        """One event through the core, then what it started after commit (the report's
        refresh) has finished, as the console waits for it before reading on."""
        response = await self.core.handle(event)
        await self.core.idle()
        return response

    async def dm(self, name: str, said: str) -> Response:
        event = DirectMessageReceived(self._origin(f"D-{name}"), self.actor(name), said)
        return await self.handle(event)

    async def press(self, name: str, action_id: str) -> Response:
        event = ActionInvocation(self._origin(f"D-{name}"), self.actor(name), action_id)
        return await self.handle(event)

    async def submit(self, name: str, prompt_id: int, values: dict[str, str]) -> Response:
        event = FormSubmission(
            self._origin(f"D-{name}"),
            self.actor(name),
            runtime.FORM_ID,
            dict(values),
            str(prompt_id),
        )
        return await self.handle(event)

    async def outbox(self) -> list[OutboxMessage]:
        async with self.db.transaction() as session:
            return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))

    async def dms(self, name: str) -> list[str]:
        """The DMs queued for a member, rendered."""
        return [
            render(row.payload)
            for row in await self.outbox()
            if row.method == "dm" and row.target.get("user_id") == name
        ]

    async def posts(self) -> list[OutboxMessage]:
        return [row for row in await self.outbox() if row.method in ("post", "update")]

    async def prompt(self, name: str, run_date: date = MONDAY) -> StandupPrompt:
        async with self.db.transaction() as session:
            found = await session.scalar(
                select(StandupPrompt)
                .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
                .where(
                    StandupPrompt.member_id == self.members[name],
                    StandupRun.run_date == run_date,
                )
            )
            assert found is not None, f"{name} has no prompt for {run_date}"
            return found

    async def answers(self, name: str, run_date: date = MONDAY) -> dict[int, str]:
        prompt = await self.prompt(name, run_date)
        async with self.db.transaction() as session:
            rows = await session.scalars(
                select(StandupAnswer).where(StandupAnswer.prompt_id == prompt.id)
            )
            return {a.question_index: a.text for a in rows}

    async def answer(self, name: str, *values: str, run_date: date = MONDAY) -> Response:
        prompt = await self.prompt(name, run_date)
        return await self.submit(name, prompt.id, {f"q{i}": v for i, v in enumerate(values)})


async def make_world(
    db: Database, zones: dict[str, str], start: datetime = START
) -> tuple[World, Scheduler]:
    clock = FakeClock(start)
    async with db.transaction() as session:
        workspace = await directory.ensure_workspace(session, PLATFORM, "T1", "Test", start)
        members: dict[str, int] = {}
        for name, zone in zones.items():
            member = await directory.ensure_member(
                session, workspace, Actor(name, name, zone), start
            )
            member.dm_channel_id = f"D-{name}"
            members[name] = member.id
        channel = await directory.ensure_channel(session, workspace, CHANNEL, "standup", start)
        workspace_id, channel_id = workspace.id, channel.id
    core = Core(db, clock)
    scheduler = Scheduler(db, clock, instance="test", reconcile_interval=3600)
    runtime.register(core, scheduler)
    blockers.register(core)  # blocker answers become tracked blockers, as in the app
    await scheduler.start()
    world = World(db, clock, core, scheduler, workspace_id, channel_id, dict(zones), members)
    return world, scheduler


BERLIN_TEAM = {
    "alice": "Europe/Berlin",
    "bob": "Europe/Berlin",
    "carol": "Europe/Berlin",
    "dana": "Europe/Berlin",
}


@asynccontextmanager
async def running_standups(
    db: Database, zones: dict[str, str] = BERLIN_TEAM, start: datetime = START
) -> AsyncIterator[World]:
    """:func:`make_world`, stopped again (background work finished, scheduler down) after use."""
    built, scheduler = await make_world(db, zones, start)
    try:
        yield built
    finally:
        await built.core.idle()
        await scheduler.stop()


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with running_standups(database) as built:
        yield built


def local_nine(zone: str = "Europe/Berlin", day: date = MONDAY) -> datetime:
    """09:00 on ``day`` in ``zone``, as a UTC instant."""
    return datetime.combine(day, time(9), ZoneInfo(zone)).astimezone(UTC)


def text_of(response: Response) -> str:
    """A private reply, rendered."""
    assert isinstance(response, Reply), response
    return render(MESSAGE_ADAPTER.dump_python(response.message, mode="json"))


# -- the console: what members see -------------------------------------------------------------


async def seed_console(tmp_path: Path, start: datetime, members: list[str], **standup: Any) -> str:
    """The console's demo workspace, created ahead of the console, with one standup in it."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'syncup.db'}"
    db = Database(url)
    try:
        await migrate.upgrade(db.engine)
        async with db.transaction() as session:
            workspace = await directory.ensure_workspace(
                session, "console", "demo", "Demo team", start
            )
            ids: dict[str, int] = {}
            for demo in DEMO_MEMBERS:
                member = await directory.ensure_member(session, workspace, demo.actor(), start)
                member.dm_channel_id = dm_channel(demo.user_id)
                ids[demo.user_id] = member.id
            channel = await directory.ensure_channel(session, workspace, "team", "team", start)
            row = standup_row(workspace.id, channel.id, start, **standup)
            session.add(row)
            await session.flush()
            for name in members:
                session.add(StandupParticipant(standup_id=row.id, member_id=ids[name]))
    finally:
        await db.dispose()
    return url


def with_runtime(app: App, seen: list[Any]) -> None:
    """Register the standup runtime unless the app already does."""
    if PROMPT_HANDLER not in app.scheduler.handlers:
        runtime.register(app.core, app.scheduler)


async def db_rows(url: str, model: type[Any]) -> list[Any]:
    db = Database(url)
    try:
        async with db.transaction() as session:
            return list(await session.scalars(select(model)))
    finally:
        await db.dispose()


async def test_console_a_standup_day_in_two_zones(tmp_path: Path) -> None:
    start = datetime(2026, 3, 9, 7, tzinfo=UTC)  # 08:00 in Berlin, 03:00 in New York
    url = await seed_console(tmp_path, start, ["alice", "bob"], reminder_minutes=60)
    run = await run_console(
        tmp_path,
        [
            "/clock 09:00",
            "shipped the login page",
            "write the tests",
            "no",
            "/as bob",
            "/clock 10:01",
            "c1",
            "reviewed PRs",
            "<!channel> deploy @everyone",
            "waiting on API keys",
        ],
        setup=with_runtime,
        start=start.isoformat(),
    )
    out = run.output
    # 09:00 in Berlin: alice's prompt.
    assert (
        "Demo clock moves to Mon 9 Mar 2026 09:00 Europe/Berlin (+1h).\n"
        "#1 → DM to @alice:\n"
        "  Hi alice! Time for Daily (Mon 9 Mar).\n"
        "  (1/3) What did you do?\n"
    ) in out
    assert "  [a1] Answer  [a2] Skip today\n" in out
    # The conversation, one question at a time, then the report: parent and thread reply.
    assert ("alice> shipped the login page\n→ DM to @alice:\n  (2/3) What will you do?\n") in out
    thanks = run.after("alice> no")
    assert thanks.startswith(
        "alice> no\n"
        "→ DM to @alice:\n"
        "  Thanks! Saved your answers for Daily (Mon 9 Mar):\n"
        "  What did you do?\n"
        "  shipped the login page\n"
    )
    assert (
        "#2 → #team:\n"
        "  Daily · Mon 9 Mar 2026\n"
        "  Heard from 1 of 2.\n"
        "  Asked later, at their local time: bob\n"
        "  Answers are in the thread.\n"
        "#3 → #team (thread of #2):\n"
        "  alice\n"
        "  What did you do?\n"
        "  shipped the login page\n"
        "  What will you do?\n"
        "  write the tests\n"
        "  Anything blocking you?\n"
        "  no\n"
    ) in thanks
    # 09:00 in New York (14:00 in Berlin): bob's prompt.
    bob_day = run.after("bob> /clock 10:01")
    assert (
        "[Mon 9 Mar 2026 09:00 America/New_York]\n"
        "#4 → DM to @bob:\n"
        "  Hi bob! Time for Daily (Mon 9 Mar).\n"
    ) in bob_day
    # An hour later, one reminder, which says a colleague has answered.
    assert (
        "[Mon 9 Mar 2026 10:00 America/New_York]\n"
        "#5 → DM to @bob:\n"
        "  A reminder: Daily (Mon 9 Mar) is waiting for your answers. "
        "1 of 2 have answered already.\n"
        "  Reply here to go on where you were, or press Answer.\n"
        "  [c1] Answer  [c2] Skip today\n"
    ) in bob_day
    # bob answers with the form; the thread and the parent follow.
    form = run.after("bob> c1")
    assert form.startswith(
        "bob> c1\n"
        "Form: Daily  (/cancel to close it)\n"
        "  (An empty line keeps the value in [brackets]. Several lines in one answer: end\n"
        '   each line but the last with \\, or type """ on a line before them and after them.)\n'
        "  What did you do?: reviewed PRs\n"
        "  What will you do?: <!channel> deploy @everyone\n"
        "  Anything blocking you?: waiting on API keys\n"
        "→ DM to @bob:\n"
        "  Thanks! Saved your answers for Daily (Mon 9 Mar):\n"
    )
    assert (
        "#7 → #team (thread of #2):\n"
        "  bob\n"
        "  What did you do?\n"
        "  reviewed PRs\n"
        "  What will you do?\n"
        "  <!channel> deploy @everyone\n"
    ) in form
    assert "→ update of #2 in #team:\n  Daily · Mon 9 Mar 2026\n  Heard from 2 of 2.\n" in form
    # bob's blocker is tracked: its card goes to him by DM (no RACI area matches it).
    assert "#6 → DM to @bob:\n  Blocker #1\n  waiting on API keys\n  Status: Open\n" in form
    assert "  waiting on API keys (blocker #1)\n" in form
    # Everything went out once: two prompts, one reminder, the card, one parent, two replies,
    # one update.
    rows = await db_rows(url, OutboxMessage)
    assert sorted(r.method for r in rows) == ["dm"] * 4 + ["post"] * 3 + ["update"]
    assert all(r.status == "sent" for r in rows)
    (blocker,) = await db_rows(url, Blocker)
    assert (blocker.text, blocker.status) == ("waiting on API keys", BlockerStatus.OPEN)


async def test_console_conversation_with_cancel_skip_and_a_bad_choice(tmp_path: Path) -> None:
    start = datetime(2026, 3, 9, 7, tzinfo=UTC)
    url = await seed_console(tmp_path, start, ["alice", "bob"], questions=RICH_QUESTIONS)
    run = await run_console(
        tmp_path,
        [
            "/clock 09:00",
            "fixed the build",
            "cancel",
            "hello?",
            "/as bob",
            "/clock 09:00",
            "reviewed PRs",
            "skip",
            "meh",
            "Bumpy",
            "great",
            "none",
        ],
        setup=with_runtime,
        start=start.isoformat(),
    )
    out = run.output
    assert (
        "alice> cancel\n"
        "→ DM to @alice:\n"
        "  Stopped; nothing was saved. Press Answer on my prompt whenever you are ready to "
        "answer Daily for Mon 9 Mar.\n"
        # With no conversation open, a DM gets the core's usual answer.
        "alice> hello?\n"
        "→ DM to @alice:\n"
        "  I only understand commands. Type /syncup help to see them.\n"
    ) in out
    assert (
        "bob> skip\n"
        "→ DM to @bob:\n"
        "  (3/5) How did it go?\n"
        "  Reply with a number or the answer: 1) smooth  2) bumpy\n"
        "bob> meh\n"
        "→ DM to @bob:\n"
        '  "meh" is not one of the choices; reply with a number from 1 to 2 or the answer: '
        "1) smooth, 2) bumpy.\n"
        "  (3/5) How did it go?\n"
    ) in out
    assert "bob> Bumpy\n→ DM to @bob:\n  (4/5) How do you feel?\n" in out
    summary = run.after("bob> none")
    assert (
        "  What will you do?\n  no answer\n  How did it go?\n  bumpy\n"
        "  How do you feel?\n  5/5 (great)\n"
    ) in summary
    prompts = {p.member_id: p for p in await db_rows(url, StandupPrompt)}
    statuses = sorted((PromptStatus(p.status).value, p.step) for p in prompts.values())
    assert statuses == [("answered", None), ("pending", None)]
    answers = await db_rows(url, StandupAnswer)
    # alice's partial answer was discarded; bob's five are saved, the skipped one empty.
    assert sorted(a.text for a in answers) == ["", "5", "bumpy", "none", "reviewed PRs"]
    assert await db_rows(url, Blocker) == []


# -- prompts ---------------------------------------------------------------------------------


async def test_prompt_member_is_idempotent_and_keys_derive_from_the_prefix(world: World) -> None:
    standup_id = await world.add_standup(["alice"])
    async with world.db.transaction() as session:
        standup = await session.get(Standup, standup_id)
        alice = await session.get(Member, world.members["alice"])
        assert standup is not None and alice is not None
        now = world.clock.now()
        first = await runtime.prompt_member(session, standup, alice, MONDAY, now, key_prefix="k")
        again = await runtime.prompt_member(session, standup, alice, MONDAY, now, key_prefix="k2")
    assert (first, again) == (True, False)
    (row,) = await world.outbox()
    assert row.idempotency_key == f"k:prompt:{world.members['alice']}"
    assert row.target == {"user_id": "alice", "dm_channel_id": "D-alice"}
    async with world.db.transaction() as session:
        (run,) = list(await session.scalars(select(StandupRun)))
    # Answers can change for a day after the prompt.
    assert run.closes_at == START + timedelta(hours=24)


async def test_each_member_is_prompted_at_nine_in_their_own_zone(database: Database) -> None:
    zones = {"alice": "Europe/Berlin", "bob": "America/New_York"}
    world, scheduler = await make_world(database, zones)
    try:
        await world.add_standup(["alice", "bob"])
        await world.advance_to(datetime(2026, 3, 9, 20, tzinfo=UTC))
        async with database.transaction() as session:
            prompted = dict(
                (
                    await session.execute(
                        select(Member.platform_user_id, StandupPrompt.prompted_at).join(
                            StandupPrompt, StandupPrompt.member_id == Member.id
                        )
                    )
                ).all()
            )
            keys = sorted(await session.scalars(select(OccurrenceClaim.key)))
        assert prompted == {
            "alice": local_nine("Europe/Berlin"),  # 08:00 UTC
            "bob": local_nine("America/New_York"),  # 13:00 UTC
        }
        assert f"standup:1:m:{world.members['alice']}@2026-03-09" in keys
        assert f"standup:1:m:{world.members['bob']}@2026-03-09" in keys
        assert len(await world.dms("alice")) == len(await world.dms("bob")) == 1
    finally:
        await scheduler.stop()


async def test_team_zone_prompts_everyone_at_the_team_time(database: Database) -> None:
    zones = {"alice": "Europe/Berlin", "bob": "America/New_York"}
    world, scheduler = await make_world(database, zones)
    try:
        await world.add_standup(["alice", "bob"], team_timezone="Asia/Tokyo", time_of_day="18:00")
        await world.advance_to(datetime(2026, 3, 9, 10, tzinfo=UTC))  # 19:00 in Tokyo
        alice, bob = await world.prompt("alice"), await world.prompt("bob")
        # 18:00 in Tokyo is 09:00 UTC; both belong to Tokyo's Monday.
        assert alice.prompted_at == bob.prompted_at == datetime(2026, 3, 9, 9, tzinfo=UTC)
        async with database.transaction() as session:
            keys = list(await session.scalars(select(OccurrenceClaim.key)))
        assert "standup:1:team@2026-03-09" in keys
    finally:
        await scheduler.stop()


async def test_holiday_means_no_prompt_and_the_next_run_is_the_day_after(world: World) -> None:
    await world.add_standup(["alice", "bob"], holidays=["2026-03-09"])
    assert world.scheduler.next_runs()[0][1] == local_nine(day=date(2026, 3, 10))
    await world.advance_to(datetime(2026, 3, 9, 18, tzinfo=UTC))
    assert await world.outbox() == []
    async with world.db.transaction() as session:
        assert (await session.scalar(select(func.count()).select_from(StandupRun))) == 0


async def test_every_other_week_skips_the_off_week(world: World) -> None:
    # Weeks count from 2 March: the week of 9 March is an off-week.
    await world.add_standup(["alice"], every_weeks=2, days=[1])
    assert world.scheduler.next_runs()[0][1] == local_nine(day=date(2026, 3, 16))


async def test_paused_standup_prompts_nobody(world: World) -> None:
    await world.add_standup(["alice"], paused=True)
    assert world.scheduler.next_runs() == []
    await world.advance_to(datetime(2026, 3, 9, 18, tzinfo=UTC))
    assert await world.outbox() == []


async def test_a_workspace_that_uninstalled_the_app_is_not_prompted(world: World) -> None:
    """Its data waits out the uninstall grace period; no prompt is queued meanwhile."""
    await world.add_standup(["alice"])
    assert world.scheduler.next_runs() != []
    async with world.db.transaction() as session:
        workspace = await session.get(Workspace, world.workspace_id)
        assert workspace is not None
        workspace.uninstalled_at = world.clock.now()
    await world.scheduler.reconcile()
    assert world.scheduler.next_runs() == []
    await world.advance_to(datetime(2026, 3, 9, 18, tzinfo=UTC))
    assert await world.outbox() == []


# -- answering ---------------------------------------------------------------------------------


async def test_dm_conversation_validates_choice_and_mood(world: World) -> None:
    await world.add_standup(["alice"], questions=RICH_QUESTIONS)
    await world.advance_to(local_nine())
    assert text_of(await world.dm("alice", "did things")).startswith("(2/5) What will you do?")
    assert text_of(await world.dm("alice", "more things")).startswith("(3/5) How did it go?")
    bad = text_of(await world.dm("alice", "meh"))
    assert bad.startswith('"meh" is not one of the choices')
    assert "(3/5) How did it go?" in bad
    assert (await world.prompt("alice")).step == 2  # still at the same question
    assert text_of(await world.dm("alice", "1")).startswith("(4/5) How do you feel?")
    assert text_of(await world.dm("alice", "9")).startswith('"9" is not a mood')
    assert text_of(await world.dm("alice", "4")).startswith("(5/5) Anything blocking you?")
    done = text_of(await world.dm("alice", "-"))
    assert done.startswith("Thanks! Saved your answers for Daily (Mon 9 Mar):")
    assert "How do you feel?\n4/5 (good)" in done
    assert await world.answers("alice") == {
        0: "did things",
        1: "more things",
        2: "smooth",
        3: "4",
        4: "-",
    }
    prompt = await world.prompt("alice")
    assert (PromptStatus(prompt.status), prompt.step) == (PromptStatus.ANSWERED, None)
    # The conversation is over: the next DM is not an answer.
    assert text_of(await world.dm("alice", "hello")) == (
        "I only understand commands. Type /syncup help to see them."
    )
    assert await world.answers("alice") == {
        0: "did things",
        1: "more things",
        2: "smooth",
        3: "4",
        4: "-",
    }


async def test_form_validates_everything_at_once_and_saves_nothing_on_error(world: World) -> None:
    await world.add_standup(["alice"], questions=RICH_QUESTIONS)
    await world.advance_to(local_nine())
    prompt = await world.prompt("alice")
    opened = await world.press("alice", f"standup-answer:{prompt.id}")
    assert isinstance(opened, OpenForm)
    form = opened.form
    assert (form.form_id, form.state) == ("standup-answer", str(prompt.id))
    kinds = [(f.name, type(f).__name__) for f in form.fields]
    assert kinds == [
        ("q0", "TextField"),
        ("q1", "TextField"),
        ("q2", "SelectField"),
        ("q3", "SelectField"),
        ("q4", "TextField"),
    ]
    assert isinstance(form.fields[0], TextField) and form.fields[0].multiline
    mood = form.fields[3]
    assert isinstance(mood, SelectField)
    assert [c.value for c in mood.options] == ["1", "2", "3", "4", "5"]
    errors = await world.answer("alice", "", "plan", "wobbly", "7", "no")
    assert isinstance(errors, FormErrors)
    assert set(errors.errors) == {"q0", "q2", "q3"}
    assert await world.answers("alice") == {}
    saved = await world.answer("alice", "did", "plan", "bumpy", "3", "no")
    assert text_of(saved).startswith("Thanks! Saved your answers for Daily (Mon 9 Mar):")
    assert await world.answers("alice") == {0: "did", 1: "plan", 2: "bumpy", 3: "3", 4: "no"}


async def test_someone_elses_prompt_cannot_be_answered(world: World) -> None:
    await world.add_standup(["alice", "bob"])
    await world.advance_to(local_nine())
    prompt = await world.prompt("alice")
    refused = await world.press("bob", f"standup-answer:{prompt.id}")
    assert "someone else's" in text_of(refused)
    refused = await world.submit("bob", prompt.id, {"q0": "x", "q1": "y", "q2": "z"})
    assert "someone else's" in text_of(refused)
    assert await world.answers("alice") == {}


async def test_yesterdays_plan_prefills_what_you_did(world: World) -> None:
    await world.add_standup(["alice"])
    await world.advance_to(local_nine())
    await world.answer("alice", "set up CI", "write the importer", "no")
    await world.advance_to(local_nine(day=date(2026, 3, 10)))
    tuesday = await world.dms("alice")
    assert "Last time you planned: write the importer; reply same to reuse it." in tuesday[-1]
    prompt = await world.prompt("alice", date(2026, 3, 10))
    opened = await world.press("alice", f"standup-answer:{prompt.id}")
    assert isinstance(opened, OpenForm)
    assert [getattr(f, "initial", None) for f in opened.form.fields] == [
        "write the importer",
        "",
        "",
    ]
    # In the conversation, "same" reuses the plan.
    assert text_of(await world.dm("alice", "same")).startswith("(2/3) What will you do?")
    assert (await world.answers("alice", date(2026, 3, 10)))[0] == "write the importer"


async def test_edit_until_the_run_closes_then_a_clear_error(world: World) -> None:
    await world.add_standup(["alice", "bob"])
    await world.advance_to(local_nine())
    await world.answer("alice", "first draft", "plan", "no")
    prompt = await world.prompt("alice")
    await world.advance_to(local_nine() + timedelta(hours=6))  # after the window: still editable
    opened = await world.press("alice", f"standup-answer:{prompt.id}")
    assert isinstance(opened, OpenForm)
    assert [getattr(f, "initial", None) for f in opened.form.fields] == [
        "first draft",
        "plan",
        "no",
    ]
    edited = await world.answer("alice", "final version", "plan", "no")
    assert text_of(edited).startswith("Updated your answers for Daily (Mon 9 Mar):")
    # The person's thread reply was updated in place: an UPDATE depending on the reply.
    posts = await world.posts()
    reply_row = next(r for r in posts if r.idempotency_key.endswith(f":m{prompt.member_id}"))
    update = next(r for r in posts if r.idempotency_key.endswith(f":m{prompt.member_id}:v1"))
    assert (update.method, update.depends_on_id) == ("update", reply_row.id)
    assert "final version" in render(update.payload)
    # A day after the prompt, the run is closed: the button and the form both say so.
    world.clock.set(local_nine() + timedelta(hours=24))
    closed = text_of(await world.press("alice", f"standup-answer:{prompt.id}"))
    assert closed == (
        "Daily for Mon 9 Mar closed at Tue 10 Mar 09:00 (Europe/Berlin); answers can no "
        "longer be changed."
    )
    late = await world.answer("alice", "sneaky change", "plan", "no")
    assert "answers can no longer be changed" in text_of(late)
    assert (await world.answers("alice"))[0] == "final version"


async def test_skip_today_by_button_and_by_command(world: World) -> None:
    standup_id = await world.add_standup(["alice", "bob", "carol"])
    # carol skips before her prompt: no DM goes out for her at all.
    async with world.db.transaction() as session:
        standup = await session.get(Standup, standup_id)
        carol = await session.get(Member, world.members["carol"])
        assert standup is not None and carol is not None
        said = await skips.skip_today(session, None, carol, world.clock.now())
    assert said == "Skipped today's Daily: no prompt or reminder for it today."
    await world.advance_to(local_nine())
    assert await world.dms("carol") == []
    assert PromptStatus((await world.prompt("carol")).status) == PromptStatus.SKIPPED
    prompt = await world.prompt("alice")
    skipped = text_of(await world.press("alice", f"standup-skip:{prompt.id}"))
    assert skipped == "Skipped Daily (Mon 9 Mar): no reminder for it today."
    async with world.db.transaction() as session:
        standup = await session.get(Standup, standup_id)
        alice = await session.get(Member, world.members["alice"])
        assert standup is not None and alice is not None
        with pytest.raises(UserError, match="Nothing to skip today: you already skipped Daily"):
            await skips.skip_today(session, standup, alice, world.clock.now())
    await world.answer("bob", "a", "b", "no")
    async with world.db.transaction() as session:
        bob = await session.get(Member, world.members["bob"])
        assert bob is not None
        with pytest.raises(UserError, match="you already answered Daily"):
            await skips.skip_today(session, None, bob, world.clock.now())
    # The report lists who skipped, and does not count them as missing.
    parent = render((await world.posts())[0].payload)
    assert "Heard from 1 of 3." in parent
    assert "Skipped: alice, carol" in parent
    assert "Not answered" not in parent


async def test_skip_on_a_day_without_standup_is_a_clear_error(world: World) -> None:
    standup_id = await world.add_standup(["alice"], days=[2])  # Tuesdays only
    async with world.db.transaction() as session:
        standup = await session.get(Standup, standup_id)
        alice = await session.get(Member, world.members["alice"])
        assert standup is not None and alice is not None
        with pytest.raises(UserError, match="no standup today"):
            await skips.skip_today(session, standup, alice, world.clock.now())
        bob = await session.get(Member, world.members["bob"])
        assert bob is not None
        with pytest.raises(UserError, match="not a participant of Daily"):
            await skips.skip_today(session, standup, bob, world.clock.now())


# -- the report ------------------------------------------------------------------------------


async def test_report_parent_thread_and_a_late_answer_in_place(world: World) -> None:
    await world.add_standup(["alice", "bob", "carol"], tag_missing=True)
    await world.advance_to(local_nine())
    assert await world.posts() == []  # no report before the first answer
    await world.answer("alice", "a1", "a2", "no")
    parent, alice_reply = await world.posts()
    assert (parent.method, parent.target, parent.depends_on_id) == (
        "post",
        {"channel_id": CHANNEL},
        None,
    )
    assert render(parent.payload) == (
        "Daily · Mon 9 Mar 2026\n"
        "Heard from 1 of 3.\n"
        "Not answered yet: @bob, @carol\n"
        "Answers are in the thread."
    )
    # tag_missing: the missing are real mentions.
    mentions = json.dumps(parent.payload)
    assert '"kind": "user"' in mentions and '"user_id": "bob"' in mentions
    assert (alice_reply.method, alice_reply.depends_on_id) == ("post", parent.id)
    assert render(alice_reply.payload).startswith("alice\nWhat did you do?\na1")

    await world.answer("bob", "b1", "b2", "no")
    (bob_reply,) = [r for r in (await world.posts())[2:] if r.method == "post"]
    (update,) = [r for r in (await world.posts())[2:] if r.method == "update"]
    assert (bob_reply.method, bob_reply.depends_on_id) == ("post", parent.id)
    assert (update.method, update.depends_on_id) == ("update", parent.id)
    assert update.idempotency_key == f"{parent.idempotency_key}:v1"
    assert "Heard from 2 of 3.\nNot answered yet: @carol" in render(update.payload)

    # The window closes: the parent says who did not answer, no longer "yet".
    await world.advance_to(local_nine() + timedelta(hours=4))
    closed = (await world.posts())[-1]
    assert closed.idempotency_key == f"{parent.idempotency_key}:v2"
    assert "Not answered: @carol" in render(closed.payload)
    # carol answers late: her reply joins the thread and the parent is updated in place.
    await world.advance_to(local_nine() + timedelta(hours=7))
    await world.answer("carol", "c1", "c2", "no")
    late = sorted((await world.posts())[-2:], key=lambda r: r.method)
    assert [(r.method, r.depends_on_id) for r in late] == [
        ("post", parent.id),
        ("update", parent.id),
    ]
    assert render(late[0].payload).startswith("carol\nWhat did you do?\nc1")
    assert render(late[1].payload).startswith("Daily · Mon 9 Mar 2026\nHeard from 3 of 3.")
    # Nothing changed, nothing sent: another edit with the same answers queues nothing.
    before = len(await world.outbox())
    await world.answer("carol", "c1", "c2", "no")
    assert len(await world.outbox()) == before
    # One parent for the run, ever.
    parents = [r for r in await world.posts() if r.method == "post" and r.depends_on_id is None]
    assert len(parents) == 1


async def test_inline_layout_keeps_answers_in_the_parent(world: World) -> None:
    await world.add_standup(["alice", "bob"], report_layout="inline")
    await world.advance_to(local_nine())
    await world.answer("alice", "a1", "a2", "no")
    await world.answer("bob", "b1", "b2", "stuck on review")
    parent, update = await world.posts()
    assert (parent.method, update.method, update.depends_on_id) == ("post", "update", parent.id)
    assert render(update.payload) == (
        "Daily · Mon 9 Mar 2026\n"
        "Heard from 2 of 2.\n" + "─" * 40 + "\n"
        "alice\nWhat did you do?\na1\nWhat will you do?\na2\nAnything blocking you?\nno\n"
        "bob\nWhat did you do?\nb1\nWhat will you do?\nb2\nAnything blocking you?\n"
        "stuck on review (blocker #1)"  # a tracked blocker, numbered as on its card
    )


async def test_group_by_question_has_one_reply_per_question(world: World) -> None:
    await world.add_standup(["alice", "bob"], group_by="question")
    await world.advance_to(local_nine())
    await world.answer("alice", "a1", "a2", "no")
    rows = await world.posts()
    parent = rows[0]
    assert [(r.method, r.depends_on_id) for r in rows[1:]] == [("post", parent.id)] * 3
    assert render(rows[1].payload) == "What did you do?\nalice: a1"
    await world.answer("bob", "b1", "b2", "no")
    updates = [r for r in (await world.posts())[4:] if r.method == "update"]
    # Each question's reply is updated in place, plus the parent's counts.
    assert sorted(r.depends_on_id for r in updates) == sorted(
        [parent.id, rows[1].id, rows[2].id, rows[3].id]
    )
    first = next(r for r in updates if r.depends_on_id == rows[1].id)
    assert render(first.payload) == "What did you do?\nalice: a1\nbob: b1"


async def test_away_member_is_not_prompted_shown_away_not_missing(world: World) -> None:
    standup_id = await world.add_standup(["alice", "bob", "carol"])
    async with world.db.transaction() as session:
        session.add(
            Absence(
                member_id=world.members["bob"],
                standup_id=None,
                start_date=date(2026, 3, 6),
                end_date=date(2026, 3, 10),
                created_at=START,
            )
        )
    other_id = await world.add_standup(["carol"], name="Retro", days=[5])
    async with world.db.transaction() as session:
        # An absence from another standup only does not keep carol from this one.
        session.add(
            Absence(
                member_id=world.members["carol"],
                standup_id=other_id,
                start_date=MONDAY,
                end_date=MONDAY,
                created_at=START,
            )
        )
    await world.advance_to(local_nine())
    assert len(await world.dms("carol")) == 1
    assert await world.dms("bob") == []
    assert PromptStatus((await world.prompt("bob")).status) == PromptStatus.AWAY
    await world.answer("alice", "a1", "a2", "no")
    parent = render((await world.posts())[0].payload)
    assert "Heard from 1 of 2." in parent
    assert "Away: bob" in parent
    assert "Not answered yet: carol" in parent
    # prompt_member itself reports that no DM went out.
    async with world.db.transaction() as session:
        standup = await session.get(Standup, standup_id)
        bob = await session.get(Member, world.members["bob"])
        assert standup is not None and bob is not None
        tuesday = date(2026, 3, 10)
        assert not await runtime.prompt_member(
            session, standup, bob, tuesday, world.clock.now(), key_prefix="x"
        )


async def test_reminder_goes_once_to_the_pending_only(world: World) -> None:
    await world.add_standup(["alice", "bob", "carol", "dana"], reminder_minutes=30)
    async with world.db.transaction() as session:
        session.add(
            Absence(
                member_id=world.members["carol"],
                standup_id=None,
                start_date=MONDAY,
                end_date=MONDAY,
                created_at=START,
            )
        )
    await world.advance_to(local_nine())
    await world.answer("alice", "a1", "a2", "no")
    bob_prompt = await world.prompt("bob")
    await world.press("bob", f"standup-skip:{bob_prompt.id}")
    await world.advance_to(local_nine() + timedelta(hours=3))
    # dana is the only one still pending: one reminder, at 09:30.
    assert [len(await world.dms(n)) for n in ("alice", "bob", "carol", "dana")] == [1, 1, 0, 2]
    reminder = (await world.dms("dana"))[-1]
    assert reminder.startswith("A reminder: Daily (Mon 9 Mar) is waiting for your answers.")
    assert (await world.prompt("dana")).reminded_at == local_nine() + timedelta(minutes=30)
    # Another pass, a restart, a second firing: never a second reminder.
    await world.scheduler.reconcile()
    await world.advance_to(local_nine() + timedelta(hours=20))
    assert len(await world.dms("dana")) == 2


async def test_channel_nudge_names_only_the_missing(world: World) -> None:
    await world.add_standup(["alice", "bob", "carol"], channel_nudge=True, window_minutes=100)
    await world.advance_to(local_nine())
    await world.answer("alice", "a1", "a2", "no")
    carol = await world.prompt("carol")
    await world.press("carol", f"standup-skip:{carol.id}")
    await world.advance_to(local_nine() + timedelta(minutes=79))
    assert not [r for r in await world.posts() if r.idempotency_key.endswith(":nudge:post")]
    await world.advance_to(local_nine() + timedelta(minutes=80))
    (nudge,) = [r for r in await world.posts() if r.idempotency_key.endswith(":nudge:post")]
    assert render(nudge.payload) == "Daily (Mon 9 Mar) is still waiting for: bob."
    # tag_missing is off: a plain name, no mention token.
    assert '"kind": "user"' not in json.dumps(nudge.payload)
    await world.advance_to(local_nine() + timedelta(hours=5))
    assert len([r for r in await world.posts() if r.idempotency_key.endswith(":nudge:post")]) == 1


async def test_channel_nudge_tags_when_asked_and_is_silent_when_all_answered(
    world: World,
) -> None:
    await world.add_standup(["alice", "bob"], channel_nudge=True, tag_missing=True)
    await world.add_standup(["carol"], name="Retro", channel_nudge=True)
    await world.advance_to(local_nine())
    await world.answer("carol", "c1", "c2", "no")
    await world.advance_to(local_nine() + timedelta(minutes=200))
    (nudge,) = [r for r in await world.posts() if r.idempotency_key.endswith(":nudge:post")]
    assert render(nudge.payload) == "Daily (Mon 9 Mar) is still waiting for: @alice, @bob."
    tokens = decode_message(nudge.payload).blocks[0].text.parts  # type: ignore[union-attr]
    assert [type(t).__name__ for t in tokens] == [
        "Plain",
        "UserMention",
        "Plain",
        "UserMention",
        "Plain",
    ]


async def test_cutoff_mode_posts_everything_at_the_cutoff(world: World) -> None:
    await world.add_standup(["alice", "bob", "carol"], report_mode="cutoff", window_minutes=120)
    await world.advance_to(local_nine())
    await world.answer("alice", "a1", "a2", "no")
    await world.answer("bob", "b1", "b2", "no")
    assert await world.posts() == []
    await world.advance_to(local_nine() + timedelta(minutes=120))
    parent, first, second = await world.posts()
    assert render(parent.payload).startswith(
        "Daily · Mon 9 Mar 2026\nHeard from 2 of 3.\nNot answered: carol"
    )
    assert [(r.method, r.depends_on_id) for r in (first, second)] == [
        ("post", parent.id),
        ("post", parent.id),
    ]
    assert render(first.payload).startswith("alice") and render(second.payload).startswith("bob")
    # A late answer posts its reply and updates the parent in place.
    await world.advance_to(local_nine() + timedelta(hours=3))
    await world.answer("carol", "c1", "c2", "no")
    late_reply, update = sorted((await world.posts())[3:], key=lambda r: r.method)
    assert (late_reply.method, late_reply.depends_on_id) == ("post", parent.id)
    assert (update.method, update.depends_on_id) == ("update", parent.id)
    assert "Heard from 3 of 3." in render(update.payload)


async def test_a_report_appears_at_the_close_even_if_nobody_answered(world: World) -> None:
    await world.add_standup(["alice", "bob"])
    await world.advance_to(local_nine() + timedelta(hours=5))
    (parent,) = await world.posts()
    assert render(parent.payload) == (
        "Daily · Mon 9 Mar 2026\n"
        "Heard from 0 of 2.\n"
        "Not answered: alice, bob\n"
        "No one has answered this time."
    )


async def test_blocker_answers_become_blocker_rows(world: World) -> None:
    await world.add_standup(["alice", "bob", "carol"])
    await world.advance_to(local_nine())
    for word in ("no", "None", "nope", "-", ""):
        assert not answers.is_blocker(word)
    await world.answer("alice", "a1", "a2", "Waiting on the API keys")
    await world.answer("bob", "b1", "b2", "nope")
    await world.dm("carol", "c1")
    await world.dm("carol", "c2")
    await world.dm("carol", "none")

    async def blockers() -> list[tuple[str, str, str]]:
        async with world.db.transaction() as session:
            rows = await session.execute(
                select(Member.platform_user_id, Blocker.text, Blocker.status).join(
                    Member, Member.id == Blocker.member_id
                )
            )
            return [(who, what, BlockerStatus(status).value) for who, what, status in rows.all()]

    assert await blockers() == [("alice", "Waiting on the API keys", "open")]
    # An edit updates the same row; answering "no" later resolves it; back again reopens it.
    await world.answer("alice", "a1", "a2", "Waiting on the API keys and a VPN")
    assert await blockers() == [("alice", "Waiting on the API keys and a VPN", "open")]
    await world.answer("alice", "a1", "a2", "no")
    assert await blockers() == [("alice", "Waiting on the API keys and a VPN", "resolved")]
    await world.answer("alice", "a1", "a2", "the VPN again")
    assert await blockers() == [("alice", "the VPN again", "open")]
    async with world.db.transaction() as session:
        assert (await session.scalar(select(func.count()).select_from(Blocker))) == 1
        blocker = await session.scalar(select(Blocker))
        assert blocker is not None and blocker.standup_answer_id is not None
        answer = await session.get(StandupAnswer, blocker.standup_answer_id)
        assert answer is not None and answer.question_index == 2


async def test_channel_wide_mentions_in_answers_stay_plain_text(world: World) -> None:
    await world.add_standup(["alice", "bob"], report_layout="thread")
    await world.advance_to(local_nine())
    await world.answer("alice", "<!channel> shipped", "@everyone <@U123> <!here>", "no")
    await world.dm("bob", "@here <!everyone>")
    await world.dm("bob", "b2")
    await world.dm("bob", "no")
    replies = [r for r in await world.posts() if r.depends_on_id is not None and r.method == "post"]
    assert len(replies) == 2
    for row in replies:
        kinds = {
            token["kind"] for block in row.payload["blocks"] for token in block["text"]["parts"]
        }
        assert kinds <= {"plain", "bold", "italic"}
    alice_tokens = [t for b in replies[0].payload["blocks"] for t in b["text"]["parts"]]
    assert {"kind": "plain", "text": "<!channel> shipped"} in alice_tokens
    assert {"kind": "plain", "text": "@everyone <@U123> <!here>"} in alice_tokens
    bob_tokens = [t for b in replies[1].payload["blocks"] for t in b["text"]["parts"]]
    assert {"kind": "plain", "text": "@here <!everyone>"} in bob_tokens


async def test_two_replicas_prompt_once(database: Database) -> None:
    world, first = await make_world(database, {"alice": "Europe/Berlin"})
    second = Scheduler(Database(database.url), world.clock, instance="b", reconcile_interval=3600)
    runtime.register(Core(second.db, world.clock), second)
    try:
        await world.add_standup(["alice"])
        world.clock.set(local_nine())
        await asyncio.gather(first.reconcile(), second.reconcile())
        assert len(await world.dms("alice")) == 1
    finally:
        await first.stop()
        await second.stop()
        await second.db.dispose()
