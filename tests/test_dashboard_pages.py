"""The dashboard's larger boards, on SQLite and PostgreSQL: the blocker board in pages of 50
(filters kept in the links, ages counted in SQL) and the pulse page one team at a time (a team
selector); bad ``page`` and ``team`` values get a clear 400 or 404 page, never a trace."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from html import unescape

import httpx
import pytest

from storage.db import Database
from storage.models import Blocker, BlockerStatus
from tests.dashboard_world import Site, build_site
from tests.test_pulse_runtime import World, add_pulse, make_pulse_world


@pytest.fixture
async def site(database: Database) -> AsyncIterator[Site]:
    world: World = await make_pulse_world(database)
    try:
        yield await build_site(world)
    finally:
        await world.core.idle()
        await world.scheduler.stop()


@pytest.fixture
async def alice(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    async with site.client() as client:
        assert (await site.sign_in(client, "alice")).status_code == 303
        yield client


def ws(site: Site) -> str:
    return f"/w/{site.world.workspace_id}"


def cards(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<article class="blocker[^"]*" id="blocker-(\d+)"', html)]


async def add_blockers(site: Site, count: int, age: timedelta, took: timedelta | None) -> list[int]:
    """``count`` blockers of alice's made ``age`` ago (resolved ``took`` after, if given)."""
    world = site.world
    now = world.clock.now()
    async with world.db.transaction() as session:
        rows = [
            Blocker(
                workspace_id=world.workspace_id,
                member_id=world.members["alice"],
                text=f"Paged blocker {age.days}/{n}",
                status=BlockerStatus.OPEN if took is None else BlockerStatus.RESOLVED,
                created_at=now - age - timedelta(seconds=n),
                resolved_at=None if took is None else now - age - timedelta(seconds=n) + took,
            )
            for n in range(count)
        ]
        session.add_all(rows)
        await session.flush()
        return [b.id for b in rows]


async def test_the_blocker_board_pages_fifty_cards_the_oldest_first(
    site: Site, alice: httpx.AsyncClient
) -> None:
    old = await add_blockers(site, 70, timedelta(days=40), None)
    await add_blockers(site, 30, timedelta(days=3), None)
    first = (await alice.get(f"{ws(site)}/blockers")).text
    # 100 added and the site's own 2 (under a day old).
    assert "102 blockers. Page 1 of 3: 50 shown, the oldest first." in first
    assert sorted(cards(first)) == sorted(old[-50:])  # the oldest made the longest ago
    assert 'Older than 4 weeks <span class="muted">(70, 50 on this page)' in first
    assert 'Under a day <span class="muted">(2, 0 on this page)' in first
    nexts = re.findall(r'<a href="([^"]+)" rel="next">', first)
    assert nexts and unescape(nexts[0]) == "?status=active&page=2"
    second = (await alice.get(f"{ws(site)}/blockers{unescape(nexts[0])}")).text
    assert len(cards(second)) == 50 and not set(cards(second)) & set(cards(first))
    last = (await alice.get(f"{ws(site)}/blockers?page=3")).text
    assert len(cards(last)) == 2 and 'rel="next"' not in last and 'rel="prev"' in last
    # Filters stay in the links; an age filter is counted and paged in SQL.
    aged = (await alice.get(f"{ws(site)}/blockers?age=older&level=0")).text
    assert "70 blockers. Page 1 of 2" in aged and len(cards(aged)) == 50
    link = unescape(re.findall(r'<a href="([^"]+)" rel="next">', aged)[0])
    assert link == "?status=active&level=0&age=older&page=2"
    rest = (await alice.get(f"{ws(site)}/blockers{link}")).text
    assert sorted(cards(rest) + cards(aged)) == sorted(old)
    week = (await alice.get(f"{ws(site)}/blockers?age=week")).text
    assert "30 blockers." in week and "Page 1" not in week and len(cards(week)) == 30


async def test_resolved_blockers_are_aged_by_the_time_they_took(
    site: Site, alice: httpx.AsyncClient
) -> None:
    slow = await add_blockers(site, 3, timedelta(days=60), timedelta(days=10))
    quick = await add_blockers(site, 4, timedelta(days=60), timedelta(hours=2))
    board = (await alice.get(f"{ws(site)}/blockers?status=resolved")).text
    assert "7 blockers." in board
    assert '1 to 4 weeks <span class="muted">(3)' in board
    assert 'Under a day <span class="muted">(4)' in board
    month = (await alice.get(f"{ws(site)}/blockers?status=resolved&age=month")).text
    assert "3 blockers." in month and sorted(cards(month)) == sorted(slow)
    day = (await alice.get(f"{ws(site)}/blockers?status=resolved&age=day")).text
    assert sorted(cards(day)) == sorted(quick)
    assert "0 blockers." in (await alice.get(f"{ws(site)}/blockers?status=resolved&age=older")).text


async def test_a_bad_page_number_is_a_clear_error(site: Site, alice: httpx.AsyncClient) -> None:
    for bad in ("-1", "abc", "0", "1.5", "99999999999"):
        answer = await alice.get(f"{ws(site)}/blockers?page={bad}")
        assert answer.status_code == 400, bad
        assert "page must be a whole number from 1" in unescape(answer.text)
        assert "Traceback" not in answer.text
    beyond = await alice.get(f"{ws(site)}/blockers?page=2")
    assert (
        beyond.status_code == 404 and "There is no page 2 of this board: it has 1." in beyond.text
    )
    # An unknown age is no filter (like an unknown status), not an empty board.
    assert "2 blockers." in (await alice.get(f"{ws(site)}/blockers?age=%3Cb%3E")).text


async def test_the_pulse_page_shows_one_team_with_a_selector(
    site: Site, alice: httpx.AsyncClient
) -> None:
    await add_pulse(site.world, team="Zeta")
    overview = (await alice.get(f"{ws(site)}/")).text
    links = dict(re.findall(r'<a href="([^"]+/pulse\?team=\d+)#team-\d+">(\w+)</a>', overview))
    ids = {name: int(href.rsplit("=", 1)[1]) for href, name in links.items()}
    assert set(ids) == {"Platform", "Zeta"}
    assert "How sustainable was this week&#39;s pace?: 3.0" in overview
    first = (await alice.get(f"{ws(site)}/pulse")).text  # the first team by name
    assert f'<section id="team-{ids["Platform"]}"' in first
    assert f'id="team-{ids["Zeta"]}"' not in first
    assert '<select id="team" name="team">' in first and ">Zeta</option>" in first
    zeta = (await alice.get(f"{ws(site)}/pulse?team={ids['Zeta']}")).text
    assert f'<section id="team-{ids["Zeta"]}"' in zeta and "No round has closed yet." in zeta
    assert "3.0" not in zeta and f'value="{ids["Zeta"]}" selected' in zeta
    chart = await alice.get(f"{ws(site)}/charts/pulse.svg?team={ids['Platform']}")
    assert chart.status_code == 200
    for bad in ("abc", "-1", "999999", "<b>"):
        answer = await alice.get(f"{ws(site)}/pulse", params={"team": bad})
        assert answer.status_code == 404, bad
        assert "This workspace has no pulse team" in answer.text and "Traceback" not in answer.text
        assert "<b>" not in answer.text
