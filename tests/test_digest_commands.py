"""``/digest`` by command and by form: bad input gets a private reply that says what to fix and
saves nothing; setup, edit, list, preview and delete do what they say. On SQLite and
PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.chat import Chart, FormErrors, OpenForm, Reply
from bot.events import Actor, CommandInvocation, FormSubmission, Origin
from bot.features.digest.inputs import FORM_ID
from storage.db import Database
from storage.digest import Digest, DigestLeader, DigestTeam
from storage.models import OutboxMessage
from storage.raci import RaciArea
from tests.test_digest_figures import make_digest_world
from tests.test_digest_runtime import words
from tests.test_pulse_runtime import CHANNEL, LEAD, PLATFORM, ZONE, World, at

_events = itertools.count(1)
GOOD = {
    "name": "Leadership",
    "teams": "Daily, Data pipeline",
    "channel": "#platform",
    "day": "mon",
    "time": "09:00",
    "timezone": ZONE,
    "sections": "standups, blockers, pulse, kudos, signals",
    "leaders": "@alice",
}


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    built = await make_digest_world(database)
    built.clock.set(at(date(2026, 3, 2), "12:00"))
    await built.add_standup(["alice", "bob"], name="Daily")
    async with built.db.transaction() as session:
        session.add(
            RaciArea(workspace_id=built.workspace_id, name="Data pipeline", key="data-pipeline",
                     timezone=ZONE, created_at=built.clock.now(), updated_at=built.clock.now())
        )  # fmt: skip
    try:
        yield built
    finally:
        await built.core.idle()
        await built.scheduler.stop()


def origin() -> Origin:
    return Origin(PLATFORM, "T1", f"c{next(_events)}", "Test", CHANNEL)


async def digest(world: World, line: str, who: str = LEAD) -> Any:
    actor = Actor(who, who, world.zones[who])
    return await world.handle(CommandInvocation(origin(), actor, "digest", text=line))


async def submit(world: World, values: dict[str, Any], state: str = "", who: str = LEAD) -> Any:
    actor = Actor(who, who, world.zones[who])
    return await world.handle(FormSubmission(origin(), actor, FORM_ID, dict(values), state))


async def saved(world: World) -> tuple[int, int, int]:
    async with world.db.transaction() as session:
        return (
            await session.scalar(select(func.count()).select_from(Digest)) or 0,
            await session.scalar(select(func.count()).select_from(DigestTeam)) or 0,
            await session.scalar(select(func.count()).select_from(DigestLeader)) or 0,
        )


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('setup "L" --channel #platform', "Teams: Name at least one team"),
        ('setup "L" --teams , --channel #platform', "Teams: Name at least one team"),
        ('setup "L" --teams Daily --channel #platform --sections', "turn on at least one"),
        ('setup "L" --teams Daily --channel #platform --sections moods', 'Unknown section "moods"'),
        (
            'setup "L" --teams Dialy --channel #platform',
            'No standup or RACI area named "Dialy". Did you mean "daily"?',
        ),
        ('setup "L" --teams Daily --channel #nowhere', "nowhere"),
        (
            'setup "L" --teams Daily --channel #platform --timezone Europe/Pariss',
            'Unknown timezone "Europe/Pariss"',
        ),
        ('setup "L" --teams Daily --channel #platform --time 25:00', "not a time of day"),
        ('setup "L" --teams Daily --channel #platform --time noon', '"noon" is not a time'),
        ('setup "L" --teams Daily --channel #platform --day someday', '"someday" is not one day'),
        ('setup "L" --teams Daily --channel #platform --leaders @nobody', "Leaders:"),
        (
            'setup "L" --teams Daily --chanel #platform',
            "Unknown option --chanel. Did you mean --channel?",
        ),
        ("setup --teams Daily --channel #platform", "Give the digest a name"),
    ],
)
async def test_bad_input_says_what_to_fix_and_saves_nothing(
    world: World, line: str, says: str
) -> None:
    said = words(await digest(world, line))
    assert says.lower() in said.lower(), said
    assert "Traceback" not in said
    assert await saved(world) == (0, 0, 0)


async def test_several_problems_are_named_at_once(world: World) -> None:
    said = words(
        await digest(world, 'setup "L" --teams Nope --channel #platform --time 9 --sections x')
    )
    assert said.startswith("3 things to fix:")
    assert "• Teams:" in said and "• Time:" in said and "• Sections:" in said


async def test_a_form_with_mistakes_gets_each_field_its_error_and_saves_nothing(
    world: World,
) -> None:
    response = await submit(
        world, {**GOOD, "teams": "", "sections": "", "timezone": "Mars/Base", "time": "9am"}
    )
    assert isinstance(response, FormErrors)
    assert set(response.errors) == {"teams", "sections", "timezone", "time"}
    assert await saved(world) == (0, 0, 0)


async def test_setup_by_form_then_edit_by_line_and_by_form(world: World) -> None:
    opened = await digest(world, "setup")
    assert isinstance(opened, OpenForm) and opened.form.form_id == FORM_ID
    said = words(await submit(world, GOOD))
    assert said == (
        "Created the digest Leadership: Daily (standup), Data pipeline (RACI area); to #platform "
        "every Mon at 09:00 Europe/Berlin; sections: standups, blockers, pulse, kudos, signals; "
        "also by DM to @alice. Next: Mon 9 Mar 2026 09:00 (Europe/Berlin)."
    )
    assert await saved(world) == (1, 2, 1)
    said = words(await digest(world, "edit Leadership --day fri --time 16:30 --leaders"))
    assert "every Fri at 16:30 Europe/Berlin" in said and "by DM" not in said
    assert await saved(world) == (1, 2, 0)
    form = await digest(world, "edit Leadership")
    assert isinstance(form, OpenForm)
    initial = {f.name: getattr(f, "initial", "") for f in form.form.fields}
    assert initial["teams"] == "Daily, Data pipeline" and initial["day"] == "fri"
    said = words(await submit(world, {**initial, "teams": "Data pipeline"}, form.form.state))
    assert "Saved the digest Leadership: Data pipeline (RACI area)" in said
    assert await saved(world) == (1, 1, 0)
    # A name is unique in the workspace.
    clash = words(await digest(world, 'setup "leadership" --teams Daily --channel #platform'))
    assert 'A digest named "leadership" exists already' in clash
    assert await saved(world) == (1, 1, 0)


async def test_members_cannot_set_up_or_preview_but_can_list(world: World) -> None:
    said = words(await digest(world, 'setup "L" --teams Daily --channel #platform', who="bob"))
    assert "Only team leads and admins" in said
    await digest(world, f'setup "L" --teams Daily --channel #platform --timezone {ZONE}')
    assert "Only team leads and admins" in words(await digest(world, "preview L", who="bob"))
    assert "L: Daily (standup)" in words(await digest(world, "list", who="bob"))


async def test_preview_is_private_and_sends_nothing(world: World) -> None:
    await digest(world, f'setup "L" --teams Daily --channel #platform --timezone {ZONE}')
    before = await world.outbox()
    response = await digest(world, "preview L")
    assert isinstance(response, Reply)
    said = words(response)
    assert said.startswith("Preview, only to you: L as of now.")
    assert "Weekly digest: Daily" in said and "Standups: participation" in said
    assert any(isinstance(b, Chart) for b in response.message.blocks)
    assert len(await world.outbox()) == len(before)
    async with world.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == len(before)


async def test_unknown_digest_names_the_ones_there_are(world: World) -> None:
    assert "There are none yet" in words(await digest(world, "preview Board"))
    await digest(world, 'setup "Leadership" --teams Daily --channel #platform')
    said = words(await digest(world, "delete Leadershp"))
    assert 'No digest named "Leadershp". Did you mean "Leadership"?' in said
    assert "No digests yet" not in words(await digest(world, "list"))
