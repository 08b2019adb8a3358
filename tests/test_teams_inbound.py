"""Teams inbound: every activity's JWT is checked by the Teams SDK (against the fake's OpenID
metadata and keys) before anything reads it; typed commands, help and typos. The real App and
the real Teams SDK against tests/fakes/teams, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from storage.db import Database
from storage.models import Workspace
from storage.teams import TeamsReference
from tests.fakes.teams import harness
from tests.fakes.teams.harness import (
    ALICE,
    TEAM_CHANNEL,
    TeamsWorld,
    shown,
    teams_world,
)
from tests.fakes.teams.server import TENANT, FakeTeams

fake = harness.fake
world = harness.world


async def _nothing_handled(world: TeamsWorld) -> None:
    assert world.adapter.inbound is not None
    assert world.adapter.inbound.handled == 0
    assert world.fake.sent == []
    async with world.app.db.transaction() as session:
        assert (await session.scalars(select(Workspace))).all() == []
        assert (await session.scalars(select(TeamsReference))).all() == []


async def test_bad_tokens_get_401_and_nothing_is_read(world: TeamsWorld) -> None:
    fake = world.fake
    activity = world.message_activity(ALICE, "help")
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bad = {
        "missing": "",
        "not a jwt": "not-a-token",
        "signed by another key": fake.token(key=other_key),
        "an unknown key id": fake.token(kid="someone-else"),
        "expired": fake.token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        "another app id": fake.token(aud="99999999-0000-4000-8000-000000000000"),
        "another issuer": fake.token(iss="https://evil.example.com"),
        "no serviceurl claim": fake.token(serviceurl=None),
        "another service url": fake.token(serviceurl="https://evil.example.com/teams/"),
    }
    for what, token in bad.items():
        answer = await world.post(activity, token=token)
        assert answer.status == 401, what
    await _nothing_handled(world)
    # The same activity with a good token is handled.
    answer = await world.post(activity)
    assert answer.status == 200
    assert world.fake.dms_to(ALICE), "help answered in alice's chat"


async def test_a_body_that_is_not_json_gets_400(world: TeamsWorld) -> None:
    answer = await world.post({}, raw=b"{not json")
    assert answer.status == 400
    await _nothing_handled(world)


async def test_tenants_outside_allowed_tenants_get_401(fake: FakeTeams, database: Database) -> None:
    async with teams_world(
        fake, database.url, harness.START, allowed_tenants=["22222222-0000-4000-8000-000000000000"]
    ) as world:
        answer = await world.say(ALICE, "help")
        assert answer.status == 401
        await _nothing_handled(world)
    async with teams_world(fake, database.url, harness.START, allowed_tenants=[TENANT]) as world:
        answer = await world.say(ALICE, "help")
        assert answer.status == 200


async def test_help_and_typos_in_the_chat_and_in_a_channel(world: TeamsWorld) -> None:
    fake = world.fake
    await world.install([ALICE], TEAM_CHANNEL)
    await world.say(ALICE, "help")
    help_card = shown(fake.dms_to(ALICE)[-1])
    assert "standup" in help_card and "poll" in help_card

    # A typo gets the closest command, in the chat...
    await world.say(ALICE, "standp setup")
    assert "Did you mean standup setup?" in shown(fake.dms_to(ALICE)[-1])
    # ...and with an @mention in a channel (answered privately, in alice's chat).
    before = len(fake.posts(TEAM_CHANNEL))
    await world.say(ALICE, "kudoz", channel=TEAM_CHANNEL)
    assert "Did you mean kudos?" in shown(fake.dms_to(ALICE)[-1])
    assert len(fake.posts(TEAM_CHANNEL)) == before, "nothing said in the channel"
    # Text in a channel that is no command says how to use syncup there.
    await world.say(ALICE, "hello there friend", channel=TEAM_CHANNEL)
    assert "mention me first" in shown(fake.dms_to(ALICE)[-1])


async def test_the_same_activity_twice_is_handled_once(world: TeamsWorld) -> None:
    activity = world.message_activity(ALICE, "help")
    await world.post(activity)
    await world.post(activity)  # Teams retried: the same conversation and activity id
    assert len(world.fake.dms_to(ALICE)) == 1
