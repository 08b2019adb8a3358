"""The web dashboard over HTTP (httpx against the ASGI app), on SQLite and PostgreSQL.

Every page's content for a member and an admin; user text escaped; the anonymity threshold
never leaking into HTML; 403 for another workspace's pages (with nothing of it in the answer)
and 404s; the blocker actions through the blocker service, with CSRF; the security headers;
the blocker board in pages of 50 and the pulse page one team at a time, bad ``page`` and
``team`` values a clear 400 or 404 page.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from html import unescape

import httpx
import pytest
from sqlalchemy import func, select

from bot.config import HttpSection
from bot.web.server import WebServer
from storage.db import Database
from storage.models import Blocker, BlockerEvent, BlockerStatus, OutboxMessage
from tests.dashboard_world import OTHER_SECRET, XSS, Site, build_site, form_of
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


@pytest.fixture
async def boss(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    async with site.client() as client:
        assert (await site.sign_in(client, "boss")).status_code == 303
        yield client


def ws(site: Site) -> str:
    return f"/w/{site.world.workspace_id}"


async def test_signed_out_pages_send_to_the_sign_in_page(site: Site) -> None:
    async with site.client() as client:
        answer = await client.get(f"{ws(site)}/blockers")
        assert answer.status_code == 303 and answer.headers["location"] == "/login"
        login = await client.get("/login")
        assert login.status_code == 200
        assert "syncup web login-link --member" in login.text


async def test_home_takes_a_one_workspace_member_to_its_overview(
    site: Site, alice: httpx.AsyncClient
) -> None:
    home = await alice.get("/")
    assert home.status_code == 303 and home.headers["location"] == f"{ws(site)}/"
    overview = await alice.get(f"{ws(site)}/")
    assert overview.status_code == 200
    html = overview.text
    assert "<h1>Overview</h1>" in html
    assert "Daily" in html and "Platform" in html  # the standup's card and the pulse team's
    assert re.search(r"<dt>Open blockers</dt><dd>2</dd>", html)
    assert re.search(r"<dt>Kudos this week</dt><dd>1</dd>", html)  # the private one not counted
    assert "1 of 3 answered" in html  # today: alice answered, bob skipped, carol pending
    assert OTHER_SECRET not in html


async def test_standups_show_todays_answers_escaped_and_a_heatmap(
    site: Site, alice: httpx.AsyncClient
) -> None:
    html = (await alice.get(f"{ws(site)}/standups")).text
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<caption>Participation in Daily, member by day (last 3 days)</caption>" in html
    rows = dict(re.findall(r'<tr><th scope="row">(\w+)</th>(.*?)</tr>', html))
    cells = {name: re.findall(r'<td class="cell cell-(\w+)">', row) for name, row in rows.items()}
    assert cells == {
        "alice": ["answered"] * 3,
        "bob": ["answered", "pending", "skipped"],
        "carol": ["away", "answered", "pending"],
    }
    assert "bob worked on day 0" not in html  # only the latest day's answers


async def test_blocker_board_groups_by_age_and_filters(
    site: Site, alice: httpx.AsyncClient
) -> None:
    html = (await alice.get(f"{ws(site)}/blockers")).text
    assert "Waiting on the database migration" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and XSS not in html
    assert 'id="col-day"' in html and "2 blockers." in html
    assert "Acknowledge #" not in html  # a member sees no actions
    assert OTHER_SECRET not in html
    # Filters: an age column with nothing in it, a level nobody reached, an unknown status.
    assert "0 blockers." in (await alice.get(f"{ws(site)}/blockers?age=older")).text
    assert "0 blockers." in (await alice.get(f"{ws(site)}/blockers?level=3")).text
    assert "2 blockers." in (await alice.get(f"{ws(site)}/blockers?status=%3Cb%3E")).text


async def test_an_admin_acknowledges_and_resolves_through_the_blocker_service(
    site: Site, boss: httpx.AsyncClient, database: Database
) -> None:
    bid = site.blocker_ids["db"]
    board = await boss.get(f"{ws(site)}/blockers")
    assert f"Acknowledge #{bid}" in board.text
    csrf = form_of(board.text)["csrf"]
    async with database.transaction() as session:
        outbox_before = await session.scalar(select(func.count()).select_from(OutboxMessage))
    done = await boss.post(f"{ws(site)}/blockers/{bid}/acknowledge", data={"csrf": csrf})
    assert done.status_code == 303
    shown = await boss.get(done.headers["location"])
    assert f"Blocker #{bid} acknowledged." in shown.text
    again = await boss.post(f"{ws(site)}/blockers/{bid}/acknowledge", data={"csrf": csrf})
    assert again.status_code == 409 and "already acknowledged by @boss" in again.text
    resolved = await boss.post(f"{ws(site)}/blockers/{bid}/resolve", data={"csrf": csrf})
    assert resolved.status_code == 303
    async with database.transaction() as session:
        blocker = await session.get(Blocker, bid)
        assert blocker is not None and blocker.status == BlockerStatus.RESOLVED
        kinds = list(
            await session.scalars(
                select(BlockerEvent.kind)
                .where(BlockerEvent.blocker_id == bid)
                .order_by(BlockerEvent.id)
            )
        )
        assert kinds[-2:] == ["acknowledged", "resolved"]
        outbox_after = await session.scalar(select(func.count()).select_from(OutboxMessage))
    assert outbox_after > outbox_before  # the area's card was redrawn, as from chat


async def test_state_changes_need_the_sessions_csrf_token(
    site: Site, boss: httpx.AsyncClient, alice: httpx.AsyncClient, database: Database
) -> None:
    bid = site.blocker_ids["db"]
    url = f"{ws(site)}/blockers/{bid}/resolve"
    assert (await boss.post(url, data={})).status_code == 403
    assert (await boss.post(url, data={"csrf": "forged"})).status_code == 403
    # Another session's token is no good either.
    alice_csrf = form_of((await alice.get(f"{ws(site)}/blockers")).text)["csrf"]
    assert (await boss.post(url, data={"csrf": alice_csrf})).status_code == 403
    # A member with a valid token is refused by the permission check, nothing saved.
    refused = await alice.post(url, data={"csrf": alice_csrf})
    assert refused.status_code == 403 and "Only admins" in refused.text
    async with database.transaction() as session:
        blocker = await session.get(Blocker, bid)
        assert blocker is not None and blocker.status == BlockerStatus.OPEN
    # Sign-out is a form too.
    assert (await alice.post("/logout", data={})).status_code == 403


async def test_another_workspaces_pages_and_blockers_are_refused(
    site: Site, alice: httpx.AsyncClient, boss: httpx.AsyncClient
) -> None:
    other = f"/w/{site.other_workspace_id}"
    for page in ("/", "/blockers", "/standups", "/pulse", "/celebrations", "/raci", "/nope"):
        answer = await alice.get(other + page)
        assert answer.status_code == 403, page
        assert OTHER_SECRET not in answer.text and "Other Corp" not in answer.text
    csrf = form_of((await boss.get(f"{ws(site)}/blockers")).text)["csrf"]
    # T1's admin cannot act on T2's blocker, through T2's URL nor through T1's.
    theirs = site.blocker_ids["other"]
    assert (
        await boss.post(f"{other}/blockers/{theirs}/resolve", data={"csrf": csrf})
    ).status_code == 403
    mixed = await boss.post(f"{ws(site)}/blockers/{theirs}/resolve", data={"csrf": csrf})
    assert mixed.status_code == 404 and OTHER_SECRET not in mixed.text


async def test_unknown_pages_and_ids_get_a_404_page(site: Site, alice: httpx.AsyncClient) -> None:
    for path in ("/nowhere", f"{ws(site)}/nope", "/w/999999/", "/static/x.css"):
        answer = await alice.get(path)
        assert answer.status_code in (403, 404), path
        assert answer.headers["content-type"].startswith("text/html")
        assert "Traceback" not in answer.text
    assert (await alice.get("/nowhere")).status_code == 404
    assert (await alice.get(f"{ws(site)}/nope")).status_code == 404
    unknown = await alice.get(f"{ws(site)}/standups?standup=424242")
    assert unknown.status_code == 200  # an unknown standup id shows the first one


async def test_pulse_shows_only_results_that_met_the_threshold(
    site: Site, alice: httpx.AsyncClient
) -> None:
    html = (await alice.get(f"{ws(site)}/pulse")).text
    assert "How sustainable was this week&#39;s pace?" in html
    assert "3.0" in html and "(5 answers)" in html
    assert "not enough answers to show yet" in html
    # The second round had two answers of 1: neither its mean nor a pool with the first
    # ((15 + 2) / 7 = 2.4) nor its count may appear anywhere.
    for leak in ("1.0", "2.4", "2 answers", "(2 "):
        assert leak not in html, leak
    for page in ("/", "/standups", "/blockers", "/celebrations", "/raci"):
        other = (await alice.get(ws(site) + page)).text
        assert "1.0" not in other and "2.4" not in other


async def test_kudos_and_milestones_timeline_hides_private_kudos_from_others(
    site: Site, alice: httpx.AsyncClient
) -> None:
    html = (await alice.get(f"{ws(site)}/celebrations")).text
    assert "Thanks for the review marathon" in html and "#craft" in html
    assert "Launch v2" in html and "in 5 days" in html
    assert "private thanks to dana" not in html
    async with site.client() as dana:
        await site.sign_in(dana, "dana")
        assert "private thanks to dana" in (await dana.get(f"{ws(site)}/celebrations")).text


async def test_raci_matrix(site: Site, alice: httpx.AsyncClient) -> None:
    html = (await alice.get(f"{ws(site)}/raci")).text
    assert "<caption>Areas by people" in html
    row = re.search(r'<tr><th scope="row">Payments</th>(.*?)</tr>', html)
    assert row is not None
    assert re.findall(r"<abbr [^>]*>(\w+)</abbr>", row.group(1)) == ["A", "R"] or re.findall(
        r"<abbr [^>]*>(\w+)</abbr>", row.group(1)
    ) == ["R", "A"]


async def test_every_answer_carries_the_security_headers(
    site: Site, alice: httpx.AsyncClient
) -> None:
    for path in ("/login", f"{ws(site)}/", "/nowhere", "/static/dashboard.css"):
        headers = (await alice.get(path)).headers
        csp = headers["content-security-policy"]
        assert "script-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
    for page in ("/", "/standups", "/blockers", "/pulse", "/celebrations", "/raci"):
        html = (await alice.get(ws(site) + page)).text
        assert "<script" not in html and " on" + "click" not in html
        assert 'href="/static/dashboard.css"' in html and "http" + "s://" not in html


async def test_charts_are_svg_images_with_alt_text_from_shown_values(
    site: Site, alice: httpx.AsyncClient
) -> None:
    standups = (await alice.get(f"{ws(site)}/standups")).text
    found = re.search(r'<img src="([^"]+heatmap\.svg[^"]*)" alt="([^"]+)"', standups)
    assert found is not None
    assert "a heatmap of 3 members by 3 days" in found.group(2)
    svg = await alice.get(found.group(1).replace("&amp;", "&"))
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert svg.text.lstrip().startswith("<?xml") and "<svg" in svg.text
    assert "<script" not in svg.text
    pulse = (await alice.get(f"{ws(site)}/pulse")).text
    found = re.search(r'<img src="([^"]+pulse\.svg[^"]*)" alt="([^"]+)"', pulse)
    assert found is not None
    assert "1 line over 1 week" in found.group(2)  # the one shown round, not the second
    assert "1.0" not in found.group(2) and "2.4" not in found.group(2)
    assert (await alice.get(found.group(1))).status_code == 200
    # Another workspace's chart, and a chart of nothing.
    other = await alice.get(f"/w/{site.other_workspace_id}/charts/heatmap.svg")
    assert other.status_code == 403
    assert (await alice.get(f"{ws(site)}/charts/pulse.svg?team=999")).status_code == 404


async def test_the_running_server_serves_the_dashboard(site: Site) -> None:
    """Through uvicorn on 127.0.0.1 (bot.web.server), as `syncup run` serves it."""
    server = WebServer(site.app, HttpSection(), "127.0.0.1", 0)
    await server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base) as client:
            page = await client.get(await site.link("alice"))
            assert (
                page.status_code == 200
                and "script-src 'none'" in page.headers["content-security-policy"]
            )
            signed = await client.post("/login/link", data=form_of(page.text))
            assert signed.status_code == 303
            blockers = await client.get(f"{ws(site)}/blockers")
            assert "Waiting on the database migration" in blockers.text
            assert (await client.get("/healthz")).json() == {"ok": True}
            missing = await client.get("/no/such/page")
            assert missing.status_code == 404 and "<h1>Page not found</h1>" in missing.text
    finally:
        await server.stop()


async def test_a_member_reads_only_the_standups_they_take_part_in(site: Site) -> None:
    async with site.client() as dana:  # not in "Daily"
        await site.sign_in(dana, "dana")
        html = (await dana.get(f"{ws(site)}/standups")).text
        assert "No standup to show" in html and "alice worked" not in html
        assert XSS not in html and "&lt;script&gt;" not in html
    async with site.client() as lead:  # a team lead sees every standup
        await site.sign_in(lead, "lead")
        assert (
            "&lt;script&gt;alert(1)&lt;/script&gt;" in (await lead.get(f"{ws(site)}/standups")).text
        )


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
