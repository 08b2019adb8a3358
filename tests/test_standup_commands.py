"""``/standup`` commands through the core: setup and edit via the form, list, pause, resume,
delete with confirmation, out of office; every bad input answered privately, nothing saved."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from bot import directory
from bot.chat import Actions, FormErrors, OpenForm, Reply, Response
from bot.core import Core
from bot.events import ActionInvocation, Actor, CommandInvocation, FormSubmission, Origin
from bot.features import account
from bot.features.standups import commands
from bot.features.standups.settings import FORM_ID
from storage.db import Database
from storage.models import (
    Absence,
    Member,
    RoleAssignment,
    RoleName,
    Standup,
    StandupParticipant,
)
from tests.fakes.clock import FakeClock
from tests.test_standup_settings import GOOD as FORM

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ALICE = Actor("U1", "alice", "Europe/Berlin", is_platform_admin=True)
BOB = Actor("U2", "bob", "America/New_York")
CHANDRA = Actor("U3", "chandra", "Asia/Kolkata")
_ids = itertools.count(1)


def origin() -> Origin:
    return Origin("test", "W1", f"e{next(_ids)}", "Test", channel_id="C1")


def command(line: str, actor: Actor = ALICE) -> CommandInvocation:
    name, _, rest = line.lstrip("/").partition(" ")
    return CommandInvocation(origin(), actor, name, rest)


def submit(actor: Actor = ALICE, state: str = "", **changes: Any) -> FormSubmission:
    return FormSubmission(origin(), actor, FORM_ID, {**FORM, **changes}, state)


def said(response: Response) -> str:
    assert isinstance(response, Reply), response
    parts = []
    for block in response.message.blocks:
        body = getattr(block, "text", None)
        parts.append(body if isinstance(body, str) else body.plain() if body else "")
    return "\n".join(parts)


@pytest.fixture
async def core(database: Database) -> Core:
    core = Core(database, FakeClock(NOW))
    account.register(core)
    commands.register(core)
    async with database.transaction() as session:
        ws = await directory.ensure_workspace(session, "test", "W1", "Test", NOW)
        members = [
            await directory.ensure_member(session, ws, a, NOW) for a in (ALICE, BOB, CHANDRA)
        ]
        team = await directory.ensure_channel(session, ws, "C1", "team", NOW)
        await directory.add_channel_members(session, team, members)
        await directory.ensure_channel(session, ws, "C2", "random", NOW)
    return core


async def count(db: Database, model: type[Any]) -> int:
    async with db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def standup(db: Database) -> Standup:
    async with db.transaction() as session:
        found = await session.scalar(select(Standup))
        assert found is not None
        return found


async def test_setup_opens_the_form_and_saves(core: Core, database: Database) -> None:
    opened = await core.handle(command("/standup setup"))
    assert isinstance(opened, OpenForm)
    assert [f.name for f in opened.form.fields][:3] == ["name", "channel", "participants"]

    saved = said(await core.handle(submit()))
    assert saved.startswith("Created Daily standup: Mon-Fri at 09:00 (each member's local time)")
    assert "2 participant(s), report in #team." in saved
    row = await standup(database)
    assert (row.time_of_day, row.days, row.reminder_minutes, row.window_minutes) == (
        "09:00",
        [1, 2, 3, 4, 5],
        60,
        240,
    )
    assert row.anchor_date == date(2026, 11, 30)  # the Monday of that week
    assert await count(database, StandupParticipant) == 2


async def test_everyone_in_a_channel(core: Core, database: Database) -> None:
    said(await core.handle(submit(participants="#team")))
    assert await count(database, StandupParticipant) == 3
    assert (await standup(database)).participants_channel_id is not None


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"timezone": "Europe/Pari"}, "timezone", "try Europe/Paris"),
        ({"time": "25:00"}, "time", "not a time of day"),
        ({"questions": ""}, "questions", "Add at least one question."),
        ({"channel": "#nowhere"}, "channel", "I don't know the channel #nowhere"),
        ({"participants": "@alice @zed"}, "participants", "No member named @zed"),
    ],
)
async def test_bad_setup_saves_nothing(
    core: Core, database: Database, changes: dict[str, str], field: str, says: str
) -> None:
    response = await core.handle(submit(**changes))
    assert isinstance(response, FormErrors)
    assert says in response.errors[field]
    assert await count(database, Standup) == 0
    assert await count(database, StandupParticipant) == 0


async def test_duplicate_name_is_refused(core: Core, database: Database) -> None:
    said(await core.handle(submit()))
    response = await core.handle(submit(name="daily STANDUP", participants="@bob"))
    assert isinstance(response, FormErrors)
    assert response.errors["name"] == (
        'A standup named "Daily standup" already exists; choose another name.'
    )
    assert await count(database, Standup) == 1


async def test_list_edit_pause_resume(core: Core, database: Database) -> None:
    assert "No standups yet" in said(await core.handle(command("/standup list")))
    said(await core.handle(submit()))
    listing = said(await core.handle(command("/standup list")))
    assert "Daily standup: Mon-Fri at 09:00" in listing and "reminder after 60 min" in listing

    form = await core.handle(command("/standup edit daily standup"))
    assert isinstance(form, OpenForm)
    initial = {f.name: f.initial for f in form.form.fields}
    assert initial["participants"] == "@alice @bob"
    assert initial["questions"].splitlines()[2] == "blocker: Anything blocking you?"
    edited = said(
        await core.handle(submit(state=form.form.state, time="10:30", participants="@bob"))
    )
    assert edited.startswith("Updated Daily standup")
    row = await standup(database)
    assert row.time_of_day == "10:30"
    assert await count(database, StandupParticipant) == 1

    assert "Paused" in said(await core.handle(command("/standup pause Daily standup")))
    assert "already paused" in said(await core.handle(command("/standup pause Daily standup")))
    assert "(paused)" in said(await core.handle(command("/standup list")))
    assert "Resumed" in said(await core.handle(command("/standup resume Daily standup")))
    assert not (await standup(database)).paused


async def test_unknown_name_suggests(core: Core) -> None:
    said(await core.handle(submit()))
    answer = said(await core.handle(command("/standup pause Daily stand")))
    assert answer == 'No standup named "Daily stand". Did you mean "Daily standup"?'


async def test_only_managers_change_a_standup(core: Core, database: Database) -> None:
    said(await core.handle(submit()))
    for line in ("/standup pause Daily standup", "/standup delete Daily standup"):
        answer = said(await core.handle(command(line, BOB)))
        assert answer == 'Only the owner of "Daily standup", team leads and admins can change it.'
    assert not (await standup(database)).paused


async def test_delete_asks_first(core: Core, database: Database) -> None:
    said(await core.handle(submit()))
    asked = await core.handle(command("/standup delete Daily standup"))
    assert isinstance(asked, Reply)
    buttons = next(b for b in asked.message.blocks if isinstance(b, Actions)).elements
    keep = ActionInvocation(origin(), ALICE, buttons[1].action_id)
    assert said(await core.handle(keep)) == "Nothing was deleted."
    assert await count(database, Standup) == 1
    sneaky = ActionInvocation(origin(), BOB, buttons[0].action_id)
    assert "Only the owner" in said(await core.handle(sneaky))
    confirm = ActionInvocation(origin(), ALICE, buttons[0].action_id)
    assert said(await core.handle(confirm)) == 'Deleted "Daily standup".'
    assert await count(database, Standup) == 0
    assert await count(database, StandupParticipant) == 0
    again = ActionInvocation(origin(), ALICE, buttons[0].action_id)
    assert said(await core.handle(again)) == "That standup is already gone."


async def test_out_of_office(core: Core, database: Database) -> None:
    answer = said(await core.handle(command("/standup ooo 2026-12-24..2026-12-31", BOB)))
    assert answer.startswith("Out of office 2026-12-24 to 2026-12-31")
    bad = said(await core.handle(command("/standup ooo 2026-12-31..2026-12-24", BOB)))
    assert "ends (2026-12-24) before it starts (2026-12-31)" in bad
    assert await count(database, Absence) == 1
    assert said(await core.handle(command("/standup ooo off", BOB))).startswith("Welcome back")
    assert await count(database, Absence) == 0
    assert (
        said(await core.handle(command("/standup ooo off", BOB))) == "You have no absence planned."
    )


async def test_several_standups_share_a_channel(core: Core, database: Database) -> None:
    said(await core.handle(submit()))
    said(await core.handle(submit(name="Weekly check-in", days="fri", participants="#team")))
    listing = said(await core.handle(command("/standup list")))
    assert "Daily standup: Mon-Fri at 09:00" in listing
    assert "Weekly check-in: Fri at 09:00" in listing
    assert await count(database, Standup) == 2


async def test_run_now_skip_history_and_stats(core: Core, database: Database) -> None:
    from storage.models import OutboxMessage, PromptStatus, StandupPrompt

    said(await core.handle(submit()))
    assert "No standup runs in the last 4 weeks" in said(
        await core.handle(command("/standup stats"))
    )
    sent = said(await core.handle(command("/standup run Daily standup")))
    assert sent == (
        'Sent "Daily standup" to 2 participant(s) now; one report for this run. '
        "Scheduled prompts are not affected."
    )
    async with database.transaction() as session:
        dms = list(await session.scalars(select(OutboxMessage).where(OutboxMessage.method == "dm")))
    assert sorted(m.target["user_id"] for m in dms) == ["U1", "U2"]

    # bob skips his day: the run by hand waiting for him, and today's scheduled prompt.
    skipped = said(await core.handle(command("/standup skip", BOB)))
    assert skipped.startswith("Skipped") and "Daily standup" in skipped
    async with database.transaction() as session:
        statuses = sorted(
            (await session.execute(select(StandupPrompt.member_id, StandupPrompt.status))).all()
        )
    alice, bob = sorted({member for member, _ in statuses})
    assert statuses == [
        (alice, PromptStatus.PENDING),
        (bob, PromptStatus.SKIPPED),
        (bob, PromptStatus.SKIPPED),
    ]
    assert "already skipped" in said(await core.handle(command("/standup skip", BOB)))

    history = said(await core.handle(command("/standup history @bob 3")))
    assert "bob" in history and "skipped" in history.lower()
    nothing = said(await core.handle(command("/standup history 400")))
    assert "1" in nothing and "365" in nothing  # days out of range: the allowed range is named
    stats = said(await core.handle(command("/standup stats Daily standup")))
    assert "Standup participation" in stats and "bob" in stats
    assert 'No standup named "Nope"' in said(await core.handle(command("/standup stats Nope")))


async def test_paused_standup_cannot_run(core: Core) -> None:
    said(await core.handle(submit()))
    said(await core.handle(command("/standup pause Daily standup")))
    answer = said(await core.handle(command("/standup run Daily standup")))
    assert answer == '"Daily standup" is paused; /standup resume Daily standup first.'


@pytest.mark.parametrize("days", ["0", "-3"])
async def test_history_of_zero_or_fewer_days_is_refused_with_the_range(
    core: Core, database: Database, days: str
) -> None:
    said(await core.handle(submit()))
    for line in (f"/standup history @bob {days}", f"/standup history {days}"):
        answer = said(await core.handle(command(line)))
        assert "must be a whole number from 1 to 365" in answer, (line, answer)


async def test_an_edit_keeps_a_past_holiday_but_refuses_a_new_one(
    core: Core, database: Database
) -> None:
    said(await core.handle(submit(holidays="2026-12-24")))
    async with database.transaction() as session:
        row = await session.scalar(select(Standup))
        assert row is not None
        row.holidays = ["2026-11-20", "2026-12-24"]  # saved back then, past now
    state = str((await standup(database)).id)
    refused = await core.handle(submit(state=state, holidays="2026-11-20, 2026-11-21"))
    assert isinstance(refused, FormErrors)
    assert "2026-11-21 is in the past" in refused.errors["holidays"]
    kept = said(await core.handle(submit(state=state, holidays="2026-11-20, 2026-12-31")))
    assert kept.startswith("Updated")
    assert (await standup(database)).holidays == ["2026-11-20", "2026-12-31"]


# -- who may change a standup: its owner, team leads and admins; nobody else -----------------


async def make_lead(db: Database, actor: Actor) -> None:
    async with db.transaction() as session:
        member = await session.scalar(
            select(Member).where(Member.platform_user_id == actor.user_id)
        )
        assert member is not None
        session.add(
            RoleAssignment(
                workspace_id=member.workspace_id,
                member_id=member.id,
                role=RoleName.TEAM_LEAD,
                granted_at=NOW,
            )
        )


async def unmake_lead(db: Database, actor: Actor) -> None:
    async with db.transaction() as session:
        member = await session.scalar(
            select(Member).where(Member.platform_user_id == actor.user_id)
        )
        assert member is not None
        await session.execute(delete(RoleAssignment).where(RoleAssignment.member_id == member.id))


async def test_a_team_lead_may_edit_pause_and_delete_someone_elses_standup(
    core: Core, database: Database
) -> None:
    said(await core.handle(submit()))  # alice's standup
    await make_lead(database, BOB)  # bob: a team lead, not a platform admin, not the owner
    form = await core.handle(command("/standup edit Daily standup", BOB))
    assert isinstance(form, OpenForm)
    edited = said(await core.handle(submit(BOB, state=form.form.state, time="10:15")))
    assert edited.startswith("Updated Daily standup")
    assert (await standup(database)).time_of_day == "10:15"
    assert said(await core.handle(command("/standup pause Daily standup", BOB))).startswith(
        'Paused "Daily standup"'
    )
    assert (await standup(database)).paused
    assert said(await core.handle(command("/standup resume Daily standup", BOB))).startswith(
        'Resumed "Daily standup"'
    )
    asked = await core.handle(command("/standup delete Daily standup", BOB))
    assert isinstance(asked, Reply)
    (delete_button, _) = next(b for b in asked.message.blocks if isinstance(b, Actions)).elements
    gone = said(await core.handle(ActionInvocation(origin(), BOB, delete_button.action_id)))
    assert gone == 'Deleted "Daily standup".'
    assert await count(database, Standup) == 0


async def test_a_plain_member_may_not_edit_pause_or_delete_someone_elses_standup(
    core: Core, database: Database
) -> None:
    said(await core.handle(submit()))  # alice's standup
    refusal = 'Only the owner of "Daily standup", team leads and admins can change it.'
    for line in ("edit", "pause", "resume", "delete", "run"):
        answer = said(await core.handle(command(f"/standup {line} Daily standup", CHANDRA)))
        assert answer == refusal, line
    delete_id = f"standup-delete:{(await standup(database)).id}"
    assert said(await core.handle(ActionInvocation(origin(), CHANDRA, delete_id))) == refusal
    row = await standup(database)
    assert not row.paused and row.time_of_day == "09:00"
    assert await count(database, Standup) == 1


async def test_an_edit_form_from_someone_who_may_not_manage_the_standup_saves_nothing(
    core: Core, database: Database
) -> None:
    said(await core.handle(submit()))  # alice's standup, with alice and bob
    await make_lead(database, BOB)
    form = await core.handle(command("/standup edit Daily standup", BOB))
    assert isinstance(form, OpenForm)
    await unmake_lead(database, BOB)  # no longer a lead when the form comes back (late)
    late = await core.handle(submit(BOB, state=form.form.state, time="11:00", participants="@bob"))
    forged = await core.handle(
        submit(CHANDRA, state=form.form.state, name="Mine now", participants="@chandra")
    )
    for response in (late, forged):
        assert said(response) == (
            'Only the owner of "Daily standup", team leads and admins can change it.'
        )
    row = await standup(database)
    assert (row.name, row.time_of_day) == ("Daily standup", "09:00")
    assert await count(database, StandupParticipant) == 2
