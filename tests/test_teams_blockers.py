"""A blocker escalated on Teams end to end: a RACI area set up with @mentions in a channel, a
blocker reported in the 1:1 chat, its card in the area's channel, the ladder's first level sent
by proactive DM to the Responsible at the business-time deadline (not before), acknowledged
from the DM's card, which pauses the ladder. The real Teams SDK and App against the fake
connector, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from storage.db import Database
from storage.models import Blocker
from tests.fakes.teams import harness
from tests.fakes.teams.harness import (
    ALICE,
    BOB,
    CAROL,
    TEAM_CHANNEL,
    TeamsWorld,
    actions_of,
    card_of,
    shown,
)
from tests.fakes.teams.server import FakeTeams

trio = harness.trio
trio_installed = harness.trio_installed


def escalations(fake: FakeTeams, who: str) -> list[str]:
    return [shown(s) for s in fake.dms_to(who) if "escalated" in shown(s)]


async def test_a_blocker_climbs_its_ladder_by_dm_and_is_acknowledged_from_the_card(
    trio_installed: TeamsWorld, database: Database
) -> None:
    world = trio_installed
    fake = world.fake
    await world.say(
        ALICE,
        'raci setup "Data" --responsible <at>alice</at> --accountable <at>bob</at> '
        "--channel #team --timezone Europe/Berlin --hours 09:00-17:00",
        channel=TEAM_CHANNEL,
        mention=(ALICE, BOB),
    )
    assert "Created the area Data" in shown(fake.dms_to(ALICE)[-1])
    await world.say(CAROL, "blocker add The ETL job needs new credentials @everyone --area Data")
    assert "Blocker #1 is open in area Data" in shown(fake.dms_to(CAROL)[-1])
    [card] = [s for s in fake.posts(TEAM_CHANNEL) if "ETL job" in shown(s)]
    # The reporter's text is shown as typed and pings nobody: no mention entity.
    assert "@everyone" in shown(card)
    assert not [e for e in card.activity.get("entities") or [] if e.get("type") == "mention"]

    # Level 1: 4 business hours from 09:00 Berlin (the blocker came in before opening), 13:00.
    await world.move_to(datetime(2026, 3, 9, 11, 59, tzinfo=UTC))
    assert escalations(fake, ALICE) == [] and escalations(fake, BOB) == []
    await world.move_to(datetime(2026, 3, 9, 12, 1, tzinfo=UTC))
    [dm] = [s for s in fake.dms_to(ALICE) if "escalated" in shown(s)]
    text = shown(dm)
    assert "Blocker #1 escalated (level 1)" in text and "ETL job" in text
    assert escalations(fake, BOB) == []  # the Accountable is the next level, not yet

    # Acknowledged from the DM's card: the answer refreshes it for alice, the ladder pauses.
    titles = [a["title"] for a in actions_of(card_of(dm.current))]
    assert "Acknowledge" in titles, titles
    answer = await world.press(ALICE, dm, "Acknowledge")
    assert answer.status == 200
    replies = [str(answer.body.get("value", ""))] + [shown(s) for s in fake.dms_to(ALICE)[-2:]]
    assert any("Acknowledged blocker #1; its escalation pauses." in r for r in replies), replies
    async with database.transaction() as session:
        blocker = await session.scalar(select(Blocker))
        assert blocker is not None and blocker.status == "acknowledged"
    # Level 2 (the Accountable) was due at 17:00 Berlin: paused by the acknowledgement (for a
    # business day), it does not come.
    await world.move_to(datetime(2026, 3, 9, 16, 30, tzinfo=UTC))
    assert escalations(fake, BOB) == []
    assert len(escalations(fake, ALICE)) == 1
    # The same button pressed again (a stale copy of the card) changes nothing.
    again = await world.press(ALICE, dm, "Acknowledge")
    assert again.status == 200
    assert len(escalations(fake, ALICE)) == 1 and escalations(fake, BOB) == []
