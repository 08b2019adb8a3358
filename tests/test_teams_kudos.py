"""Kudos on Teams end to end: typed with an @mention of the bot and of the receiver in a
channel (Teams' mention entities name Teams ids; syncup maps them to the members it knows),
posted in the channel with the receiver as a real mention entity and the reason shown as typed,
the receiver told in their chat, the giver answered privately; on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.kudos import Kudos
from tests.fakes.teams import harness
from tests.fakes.teams.harness import (
    ALICE,
    BOB,
    TEAM_CHANNEL,
    TeamsWorld,
    card_of,
    shown,
)

fake = harness.fake
world = harness.world
installed = harness.installed


async def kudos_count(world: TeamsWorld) -> int:
    async with world.app.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(Kudos)) or 0)


async def test_kudos_with_a_mention_in_a_channel(installed: TeamsWorld) -> None:
    world = installed
    fake = world.fake
    answer = await world.say(
        ALICE,
        "kudos <at>bob</at> Thanks for the **review** <at>everyone</at> #craft",
        channel=TEAM_CHANNEL,
        mention=(BOB,),
    )
    assert answer.status == 200
    assert await kudos_count(world) == 1
    [post] = fake.posts(TEAM_CHANNEL)
    card = card_of(post.activity)
    body = shown(post)
    # bob is a real mention: an entity naming him, and nobody else.
    entities = card["msteams"]["entities"]
    assert [e["mentioned"]["id"] for e in entities] == [BOB]
    assert entities[0]["text"] in body
    assert post.activity["entities"] == entities
    # The reason shows as typed: no bold, and "<at>everyone</at>" is no mention.
    assert "\\*\\*review\\*\\*" in body
    assert "<at>everyone</at>" not in body and "everyone" in body
    [dm] = fake.dms_to(BOB)
    assert "gave you kudos" in shown(dm)
    mine = shown(fake.dms_to(ALICE)[-1])
    assert "left today" in mine


async def test_kudos_to_oneself_is_refused_privately(installed: TeamsWorld) -> None:
    world = installed
    fake = world.fake
    await world.say(ALICE, "kudos <at>alice</at> great job", channel=TEAM_CHANNEL, mention=(ALICE,))
    assert await kudos_count(world) == 0
    assert fake.posts(TEAM_CHANNEL) == []
    assert "yourself" in shown(fake.dms_to(ALICE)[-1]).lower()
