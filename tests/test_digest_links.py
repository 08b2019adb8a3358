"""The weekly digest's links lead to real dashboard pages: every link a digest of a standup team
or of a RACI area carries opens (200) for a member signed in, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.chat import Context, Link
from bot.features.digest.figures import TeamFigures
from bot.features.digest.render import dashboard_links
from bot.features.digest.weeks import Scope
from storage.db import Database
from storage.raci import RaciArea
from tests.dashboard_world import BASE, Site, build_site
from tests.test_pulse_runtime import World, make_pulse_world

SECTIONS = ("standups", "blockers", "pulse", "kudos")


@pytest.fixture
async def site(database: Database) -> AsyncIterator[Site]:
    world: World = await make_pulse_world(database)
    try:
        yield await build_site(world)
    finally:
        await world.core.idle()
        await world.scheduler.stop()


def links(scope: Scope) -> list[Link]:
    figures = TeamFigures(
        scope=scope, weeks=(), standups=None, blockers=None, pulse=None, kudos=None
    )
    (context,) = dashboard_links(BASE + "/", figures, SECTIONS)
    assert isinstance(context, Context)
    return [part for part in context.text.parts if isinstance(part, Link)]


async def test_every_link_of_a_digest_opens_a_dashboard_page(site: Site) -> None:
    workspace = site.world.workspace_id
    async with site.world.db.transaction() as session:
        area_id = await session.scalar(
            select(RaciArea.id).where(RaciArea.workspace_id == workspace).limit(1)
        )
    assert area_id is not None
    standup = links(Scope(workspace, "standup", site.standup_id, "Daily"))
    area = links(Scope(workspace, "area", area_id, "Platform"))
    assert [link.label for link in standup] == ["Daily", "blockers", "pulse", "kudos"]
    assert [link.label for link in area] == ["Platform", "pulse", "kudos"]  # its page: blockers
    async with site.client() as client:
        assert (await site.sign_in(client, "boss")).status_code == 303
        for link in standup + area:
            assert link.url.startswith(BASE + f"/w/{workspace}/")
            page = await client.get(link.url.removeprefix(BASE))
            assert page.status_code == 200, (link.url, page.status_code)
        # The team's own page is that team's standup, chosen.
        daily = await client.get(standup[0].url.removeprefix(BASE))
        assert f'<option value="{site.standup_id}" selected>' in daily.text
