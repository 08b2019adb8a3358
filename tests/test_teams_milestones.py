"""A milestone on Teams end to end: added by a line typed with an @mention of the bot in a
channel, its T-7 countdown posted there at 09:00 in the lead's zone, marked done by its owner,
and the celebration posted in the channel with a mention entity for the owner only (nobody else
pinged). The real Teams SDK and App against the fake connector, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.fakes.teams import harness
from tests.fakes.teams.harness import (
    ALICE,
    BOB,
    TEAM_CHANNEL,
    TeamsWorld,
    shown,
)

fake = harness.fake
world = harness.world
installed = harness.installed


def mentioned(activity: dict[str, object]) -> list[str]:
    entities = activity.get("entities") or []
    assert isinstance(entities, list)
    return [str(e["mentioned"]["id"]) for e in entities if e.get("type") == "mention"]


async def test_a_milestone_counts_down_and_is_celebrated(installed: TeamsWorld) -> None:
    world = installed
    fake = world.fake
    await world.say(
        ALICE,
        'milestone add "Launch v2" 2026-03-20 --owner <at>bob</at>',
        channel=TEAM_CHANNEL,
        mention=(BOB,),
    )
    said = shown(fake.dms_to(ALICE)[-1])
    assert said.startswith("Milestone **Launch v2** added: due Fri 20 Mar 2026, in 11 days."), said
    assert fake.posts(TEAM_CHANNEL) == []

    await world.move_to(datetime(2026, 3, 13, 9, 1, tzinfo=UTC))
    [countdown] = fake.posts(TEAM_CHANNEL)
    assert "7 days to **Launch v2**" in shown(countdown), shown(countdown)

    await world.say(BOB, "milestone done Launch v2", channel=TEAM_CHANNEL)
    assert shown(fake.dms_to(BOB)[-1]).startswith("Marked **Launch v2** done.")
    [celebration] = [s for s in fake.posts(TEAM_CHANNEL) if "Milestone done" in shown(s)]
    assert "Milestone done: Launch v2" in shown(celebration)
    # A mention entity for the owner only: bob is pinged, nobody else.
    assert mentioned(celebration.activity) == [BOB]  # by Entra object id, as Teams takes it
