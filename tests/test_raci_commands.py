"""/raci through the core on SQLite and PostgreSQL: areas created by one line and by the form,
groups expanded, the matrix shown, edits, deletion with its confirm button and its refusal while
blockers are open, and every bad input answered privately with nothing saved."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.chat import MESSAGE_ADAPTER, Actions, Chart, FormErrors, OpenForm
from bot.errors import UserError
from bot.features.raci.people import area_key, find_area, role_members, suggest_area
from bot.port import Method
from storage.db import Database
from storage.models import Blocker, BlockerStatus, Member, OutboxMessage, Workspace
from storage.raci import RaciArea, RaciAssignment, RaciRole
from tests.raci_world import PIPELINE, RaciWorld, raci_world, said


@pytest.fixture
async def world(database: Database) -> AsyncIterator[RaciWorld]:
    async with raci_world(database) as built:
        yield built


async def counts(world: RaciWorld) -> tuple[int, int]:
    async with world.database.transaction() as session:
        areas = await session.scalar(select(func.count()).select_from(RaciArea))
        cells = await session.scalar(select(func.count()).select_from(RaciAssignment))
    return int(areas or 0), int(cells or 0)


async def test_setup_by_one_line_and_who_holds_each_role(world: RaciWorld) -> None:
    shown = await world.text(PIPELINE)
    assert shown.startswith("Created the area Data pipeline.")
    assert "Responsible (R): @bob, @data-eng (group: bob, carol)" in shown
    assert "Accountable (A): @alice" in shown
    assert "Consulted (C): @ml (group: dan, erin)" in shown
    assert "Informed (I): #data" in shown
    assert "mon-fri 08:30-17:00 Europe/Berlin · public holidays: DE BE" in shown
    assert "keywords: etl, airflow, data pipeline" in shown
    async with world.database.transaction() as session:
        workspace = await session.scalar(select(Workspace))
        assert workspace is not None
        area = await find_area(session, workspace.id, "  DATA   pipeline ")
        assert (area.key, area.channel_id, area.timezone) == (
            "data pipeline",
            "C-data",
            "Europe/Berlin",
        )
        assert (area.day_start_minute, area.day_end_minute, area.work_days) == (
            510,
            1020,
            [1, 2, 3, 4, 5],
        )
        assert (area.holiday_country, area.holiday_subdivision) == ("DE", "BE")
        assert area.custom_holidays == ["2026-12-24", "2026-12-31"]
        responsible = await role_members(session, world.core, area, RaciRole.RESPONSIBLE)
        assert [m.display_name for m in responsible] == ["bob", "carol"]  # the group expanded
        accountable = await role_members(session, world.core, area, RaciRole.ACCOUNTABLE)
        assert [m.display_name for m in accountable] == ["alice"]
        informed = await role_members(session, world.core, area, RaciRole.INFORMED)
        assert informed == []  # a channel is a place, not people
        # Without a platform that lists groups, the group adds nobody (bob stays).
        without = await role_members(session, None, area, RaciRole.RESPONSIBLE)
        assert [m.display_name for m in without] == ["bob"]
        with pytest.raises(UserError, match='Unknown area "serving"; areas: Data pipeline'):
            await find_area(session, workspace.id, "serving")


async def test_groups_people_new_to_syncup_are_stored(world: RaciWorld) -> None:
    world.directory.members["fay"] = "fay"
    world.directory.groups["S-new"] = ("newbies", ["fay"])
    await world.text("/raci setup Labeling -r @newbies -a @alice")
    async with world.database.transaction() as session:
        area = await session.scalar(select(RaciArea))
        assert area is not None
        people = await role_members(session, world.core, area, RaciRole.RESPONSIBLE)
        assert [(m.display_name, m.platform_user_id) for m in people] == [("fay", "fay")]
        assert await session.scalar(select(Member).where(Member.platform_user_id == "fay"))


async def test_the_form_creates_and_edits_an_area(world: RaciWorld) -> None:
    opened = await world.command("/raci setup")
    assert isinstance(opened, OpenForm)
    fields = {f.name: f for f in opened.form.fields}
    assert fields["channel"].initial == "#team"  # where the command was typed
    values = {
        "name": "Training",
        "responsible": "@carol, @ml",
        "accountable": "@bob",
        "consulted": "",
        "informed": "#team @erin",
        "channel": "#team",
        "timezone": "America/New_York",
        "days": "mon-thu",
        "hours": "10-18",
        "holidays": "US",
        "dates": "",
        "keywords": "gpu, training run",
    }
    assert said(await world.submit(values)).startswith("Created the area Training.")
    edit = await world.command("/raci edit training")
    assert isinstance(edit, OpenForm)
    initial = {f.name: f.initial for f in edit.form.fields}
    assert initial["responsible"] == "@carol @ml"
    assert initial["informed"] == "#team @erin"  # as typed
    assert (initial["days"], initial["hours"], initial["holidays"]) == (
        "mon,tue,wed,thu",
        "10:00-18:00",
        "US",
    )
    changed = dict(initial, accountable="@dan", name="Model training")
    shown = said(await world.submit(changed, state=edit.form.state))
    assert shown.startswith("Saved the area Model training.")
    assert "Accountable (A): @dan" in shown
    # One line: only the options given change.
    shown = await world.text('/raci edit "model training" --keywords gpu --hours 09:00-17:00')
    assert "Accountable (A): @dan" in shown and "keywords: gpu" in shown
    assert "mon-thu" not in shown and "mon,tue,wed,thu 09:00-17:00 America/New_York" in shown
    assert await counts(world) == (1, 5)


async def test_the_matrix_as_a_table_and_as_charts(world: RaciWorld) -> None:
    await world.text(PIPELINE)
    await world.text("/raci setup Serving -r @carol -a @bob -i @alice")
    table = await world.text("/raci show", by="erin")  # everyone may read
    assert table.splitlines() == [
        "RACI matrix (2 areas)",
        "Area           alice  bob  carol  @data-eng  @ml  #data",
        "Data pipeline  A      R    .      R          C    I",
        "Serving        I      A    R      .          .    .",
        "R Responsible · A Accountable · C Consulted · I Informed. One area: /raci show AREA",
    ]
    # Wider than a phone shows: the same matrix as a chart, with its words as alt text.
    for n in range(12):
        world.directory.members[f"person-with-a-long-name-{n}"] = f"person-with-a-long-name-{n}"
        await world.text(f"/raci setup Area{n} -r @person-with-a-long-name-{n} -a @alice")
    told = await world.text("/raci show")
    assert told == (
        "The RACI matrix (14 areas by 18 people): too wide for a message, so I sent it to you "
        "as a picture in a direct message."
    )
    async with world.database.transaction() as session:
        row = (
            await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()))
        ).first()
        assert row is not None and row.method == Method.DM
        sent = MESSAGE_ADAPTER.validate_python(row.payload)
    charts = [b for b in sent.blocks if isinstance(b, Chart)]
    assert len(charts) == 1 and charts[0].style == "grid"
    assert charts[0].rows[0] == "Area0" and "person-with-a-long-name-0" in charts[0].labels
    assert "Serving: alice I, bob A, carol R" in charts[0].alt
    row = charts[0].rows.index("Data pipeline")
    column = charts[0].labels.index("@data-eng")
    assert charts[0].cells[row][column] == "R"


async def test_delete_asks_then_deletes(world: RaciWorld) -> None:
    await world.text(PIPELINE)
    asked = await world.command("/raci delete data pipeline")
    buttons = next(b for b in asked.message.blocks if isinstance(b, Actions)).elements
    assert [b.label for b in buttons] == ["Delete", "Keep it"]
    assert await counts(world) == (1, 5)
    assert said(await world.press(buttons[1].action_id)) == "Kept the area Data pipeline."
    assert (
        said(await world.press(buttons[0].action_id, by="bob"))
        == "Only team leads and admins can do that."
    )
    assert (
        said(await world.press(buttons[0].action_id))
        == "Deleted the area Data pipeline and its RACI."
    )
    assert await counts(world) == (0, 0)
    assert said(await world.press(buttons[0].action_id)) == "That area is already gone."


async def test_delete_is_refused_while_blockers_are_open(world: RaciWorld) -> None:
    await world.text(PIPELINE)
    async with world.database.transaction() as session:
        area = await session.scalar(select(RaciArea))
        bob = await session.scalar(select(Member).where(Member.platform_user_id == "bob"))
        assert area is not None and bob is not None
        for status in (BlockerStatus.OPEN, BlockerStatus.ACKNOWLEDGED, BlockerStatus.RESOLVED):
            session.add(
                Blocker(
                    workspace_id=area.workspace_id, member_id=bob.id, text="waiting on ETL",
                    status=status, created_at=world.clock.now(), area_id=area.id,
                )
            )  # fmt: skip
    refused = await world.text("/raci delete data pipeline")
    assert refused.startswith('2 open blockers are in "Data pipeline" or waiting on it; move')
    assert "/blocker list Data pipeline lists them." in refused
    assert await counts(world) == (1, 5)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("/raci setup X -r @bob", "An area needs exactly one Accountable"),
        (
            "/raci setup X -r @bob -a @alice @carol",
            "Only one person can be Accountable (the RACI rule); you named @alice and @carol.",
        ),
        (
            "/raci setup X -r @bob -a @data-eng",
            "Accountable is one person, not a group (@data-eng)",
        ),
        ("/raci setup X -a @alice", "Name at least one Responsible"),
        (
            "/raci setup X -r @zed -a @alice",
            "No member or user group named @zed in this workspace.",
        ),
        (
            "/raci setup X -r #data -a @alice",
            "Responsible takes people or user groups, not a channel (#data)",
        ),
        (
            "/raci setup X -r @bob -a @alice --timezone Europe/Pariss",
            'Unknown timezone "Europe/Pariss"; try Europe/Paris.',
        ),
        (
            "/raci setup X -r @bob -a @alice --hours 17:00-09:00",
            'Working hours "17:00-09:00" end before they start',
        ),
        (
            "/raci setup X -r @bob -a @alice --hours 9am",
            '"9am" is not working hours; write them like 09:00-17:00.',
        ),
        ("/raci setup X -r @bob -a @alice --holidays XX", 'Unknown public-holiday country "XX"'),
        (
            "/raci setup X -r @bob -a @alice --holidays DE ZZ",
            'Unknown subdivision "ZZ" of DE; DE has BB, BE,',
        ),
        ("/raci setup X -r @bob -a @alice --days funday", 'Unknown day "funday"'),
        (
            "/raci setup X -r @bob -a @alice --dates 2026-02-30",
            '"2026-02-30" is not a date; use YYYY-MM-DD.',
        ),
        ("/raci setup X -r @bob -a @alice --channel #random", "Invite me"),
        ("/raci setup X -r @bob -a @alice --colour blue", "Unknown option --colour."),
        ("/raci edit Nope --keywords x", 'Unknown area "Nope"; areas: Data pipeline'),
        ("/raci who nope", 'Unknown area "nope"; areas: Data pipeline'),
        (
            '/raci setup "DATA  Pipeline" -r @bob -a @alice',
            'There is already an area "Data pipeline" (names ignore case)',
        ),
    ],
)
async def test_bad_input_is_refused_with_nothing_saved(
    world: RaciWorld, line: str, problem: str
) -> None:
    await world.text(PIPELINE)
    before = await counts(world)
    assert problem in await world.text(line)
    assert await counts(world) == before


async def test_every_problem_of_a_line_is_told_at_once(world: RaciWorld) -> None:
    shown = await world.text("/raci setup X -r @zed -a @alice @bob --hours 18-9 --holidays XX")
    assert shown.splitlines()[0] == "4 things to fix:"
    assert [line.split(":")[0] for line in shown.splitlines()[1:]] == [
        "• Working hours", "• Public holidays", "• Responsible", "• Accountable",
    ]  # fmt: skip


async def test_the_form_shows_errors_next_to_the_fields(world: RaciWorld) -> None:
    values = {"name": "", "responsible": "@bob", "accountable": "", "timezone": "Mars/Base",
              "days": "mon-fri", "hours": "09:00-17:00"}  # fmt: skip
    errors = await world.submit(values)
    assert isinstance(errors, FormErrors)
    assert set(errors.errors) == {"name", "accountable", "timezone"}
    assert await counts(world) == (0, 0)


async def test_members_without_permission_cannot_manage(world: RaciWorld) -> None:
    await world.text(PIPELINE)
    for line in (
        "/raci setup Y -r @bob -a @bob",
        "/raci edit Data\\ pipeline",
        "/raci delete data pipeline",
    ):
        assert await world.text(line, by="bob") == "Only team leads and admins can do that."
    values = {"name": "Y", "responsible": "@bob", "accountable": "@bob"}
    assert said(await world.submit(values, by="bob")) == "Only team leads and admins can do that."
    assert "Data pipeline" in await world.text("/raci who data pipeline", by="bob")
    assert await counts(world) == (1, 5)


async def test_a_platform_that_cannot_list_groups(world: RaciWorld) -> None:
    world.directory.groups_unavailable = True
    shown = await world.text("/raci setup X -r @data-eng -a @alice")
    assert shown == "syncup lacks the scope usergroups:read."
    world.directory.groups_unavailable = False
    await world.text("/raci setup X -r @data-eng -a @alice")
    world.directory.groups_unavailable = True
    async with world.database.transaction() as session:
        area = await session.scalar(select(RaciArea))
        assert area is not None
        assert await role_members(session, world.core, area, RaciRole.RESPONSIBLE) == []
    assert "Responsible (R): @data-eng (group)" in await world.text("/raci who x", by="bob")


async def test_suggest_area_by_keywords(world: RaciWorld) -> None:
    await world.text(PIPELINE)
    await world.text(
        "/raci setup Labeling -r @carol -a @bob --keywords labeling, annotation, labelers"
    )
    await world.text("/raci setup Serving -r @carol -a @bob --keywords latency, api")
    async with world.database.transaction() as session:
        areas = list(await session.scalars(select(RaciArea)))
    by = {a.name: a for a in areas}
    assert (
        suggest_area(areas, "Waiting on the labelers for the new annotation batch")
        is by["Labeling"]
    )
    assert suggest_area(areas, "The Airflow ETL job is stuck") is by["Data pipeline"]
    assert suggest_area(areas, "data-pipeline broke again") is by["Data pipeline"]  # its name
    assert suggest_area(areas, "API latency and the ETL") is by["Serving"]  # two hits beat one
    assert suggest_area(areas, "api and etl") is None  # a tie is no suggestion
    assert suggest_area(areas, "lunch") is None
    assert suggest_area(areas, "relabeling") is None  # whole words only
    assert area_key("  Data   PIPELINE ") == "data pipeline"


async def test_help_explains_the_one_line_options(world: RaciWorld) -> None:
    shown = await world.text("/raci help", by="bob")
    assert "/raci setup [LINE...]" in shown and "--responsible" in shown
    assert "Accountable is exactly one person." in shown
    world.clock.advance(timedelta(minutes=1))
