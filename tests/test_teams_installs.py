"""Installing and removing the app on Teams, against the fake connector through the real SDK, on
SQLite and PostgreSQL.

syncup is installed in a tenant's scopes (each team, group chat and personal scope it was added
to). Removed from one team, it stops posting in that team's channels and nothing else changes;
removed from its last scope, the tenant's data removal starts as on Slack (deleted after the
grace period unless it is added again). The member who adds it to a tenant without an admin
becomes its admin."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from adapters.teams.installs import INSTALL
from bot.chat import message
from bot.port import Delivery, Method, PermanentDeliveryError, Target
from storage.models import Member, RoleAssignment, RoleName, Workspace
from storage.teams import TeamsReference
from tests.fakes.teams import harness
from tests.fakes.teams.harness import ALICE, BOB, TEAM_CHANNEL, TEAM_ID, TeamsWorld, shown
from tests.fakes.teams.server import TENANT

fake = harness.fake
world = harness.world
installed = harness.installed

OTHER_TEAM = "19:other-team@thread.tacv2"
OTHER_CHANNEL = "19:design@thread.tacv2"


def in_team(world: TeamsWorld, who: str, kind: str, team: str, channel: str) -> dict[str, Any]:
    activity = world._base(who, kind)
    activity["conversation"], activity["channelData"] = world.channel(channel, "x")
    activity["conversation"]["id"] = channel
    activity["channelData"]["team"] = {"id": team, "name": "Design"}
    activity["channelData"]["teamsTeamId"] = team
    return activity


def installation(
    world: TeamsWorld, who: str, action: str, *, team: str | None = None, channel: str = ""
) -> dict[str, Any]:
    """``installationUpdate`` as Teams sends it: in a team's channel, or the member's chat."""
    if team is None:
        activity = world._base(who, "installationUpdate")
        activity["conversation"] = world.personal(who)
        activity["channelData"] = {"tenant": {"id": TENANT}}
    else:
        activity = in_team(world, who, "installationUpdate", team, channel)
    activity["action"] = action
    return activity


async def workspace(world: TeamsWorld) -> Workspace | None:
    async with world.app.db.transaction() as session:
        return await session.scalar(select(Workspace).where(Workspace.external_id == TENANT))


async def scopes(world: TeamsWorld) -> set[str]:
    async with world.app.db.transaction() as session:
        return set(
            await session.scalars(select(TeamsReference.key).where(TeamsReference.kind == INSTALL))
        )


async def post(world: TeamsWorld, channel: str, text: str) -> Any:
    delivery = Delivery(1, TENANT, Method.POST, Target(channel_id=channel), message(text), text, 1)
    return await world.adapter.port.deliver(delivery)


async def admins(world: TeamsWorld) -> list[str]:
    async with world.app.db.transaction() as session:
        return list(
            await session.scalars(
                select(Member.display_name)
                .join(RoleAssignment, RoleAssignment.member_id == Member.id)
                .where(RoleAssignment.role == RoleName.ADMIN)
            )
        )


async def test_the_installer_is_admin_and_every_scope_is_tracked(installed: TeamsWorld) -> None:
    world = installed
    assert await admins(world) == ["alice"]  # who added syncup; bob, added with her, is not
    await world.post(installation(world, BOB, "add"))  # bob adds it for himself
    await world.post(installation(world, BOB, "add", team=OTHER_TEAM, channel=OTHER_CHANNEL))
    assert await scopes(world) == {TEAM_ID, OTHER_TEAM, "personal:" + BOB.replace("-", "").upper()}
    # bob added syncup too, but the tenant has its admin already: he is a member.
    assert (await world.say(BOB, "raci setup Data --responsible @bob")).status == 200
    assert "Only team leads and admins" in shown(world.fake.dms_to(BOB)[-1])
    assert await admins(world) == ["alice"]


async def test_removed_from_one_team_it_stops_posting_there_only(installed: TeamsWorld) -> None:
    world = installed
    fake = world.fake
    fake.add_channel(OTHER_CHANNEL, "design")
    await world.post(installation(world, BOB, "add", team=OTHER_TEAM, channel=OTHER_CHANNEL))
    hello = in_team(world, BOB, "message", OTHER_TEAM, OTHER_CHANNEL)
    hello["text"] = "<at>syncup</at> help"
    hello["conversation"]["id"] = f"{OTHER_CHANNEL};messageid={hello['id']}"
    await world.post(hello)  # syncup now knows the channel, in the other team
    await post(world, OTHER_CHANNEL, "before")
    assert [shown(s) for s in fake.posts(OTHER_CHANNEL)] == ["before"]

    await world.post(installation(world, BOB, "remove", team=OTHER_TEAM, channel=OTHER_CHANNEL))
    with pytest.raises(PermanentDeliveryError, match="removed from the team of this channel"):
        await post(world, OTHER_CHANNEL, "after")
    assert [shown(s) for s in fake.posts(OTHER_CHANNEL)] == ["before"]
    await post(world, TEAM_CHANNEL, "the first team still gets posts")
    assert shown(fake.posts(TEAM_CHANNEL)[-1]) == "the first team still gets posts"
    found = await workspace(world)
    assert found is not None and found.uninstalled_at is None  # the tenant is not left

    # Added to that team again: posting there works again.
    await world.post(installation(world, BOB, "add", team=OTHER_TEAM, channel=OTHER_CHANNEL))
    await post(world, OTHER_CHANNEL, "back")
    assert shown(fake.posts(OTHER_CHANNEL)[-1]) == "back"


async def test_removed_everywhere_the_tenants_data_goes_after_the_grace_period(
    installed: TeamsWorld,
) -> None:
    world = installed
    await world.post(installation(world, BOB, "add"))  # bob's personal scope too
    await world.post(installation(world, ALICE, "remove", team=TEAM_ID, channel=TEAM_CHANNEL))
    found = await workspace(world)
    assert found is not None and found.uninstalled_at is None  # still in bob's personal scope

    # Removed from bob's personal scope as well: the last one. The grace period starts.
    await world.post(installation(world, BOB, "remove"))
    found = await workspace(world)
    assert found is not None and found.uninstalled_at is not None
    # Added back within the grace period: the data is kept.
    await world.install([ALICE], TEAM_CHANNEL)
    found = await workspace(world)
    assert found is not None and found.uninstalled_at is None

    # Removed again (the bot leaving the team's roster says the same), and the grace passes.
    gone = in_team(world, ALICE, "conversationUpdate", TEAM_ID, TEAM_CHANNEL)
    gone["membersRemoved"] = [{"id": harness.BOT_ID}]
    await world.post(gone)
    found = await workspace(world)
    assert found is not None and found.uninstalled_at is not None
    grace = world.app.workspace_removal.grace
    await world.move_to(world.clock.now() + grace + timedelta(hours=2))
    assert await workspace(world) is None
    assert world.app.workspace_removal.removed == [f"teams:{TENANT}"]
