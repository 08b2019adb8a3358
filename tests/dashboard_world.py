"""A workspace with something on every dashboard page, and an HTTP client for the dashboard.

Built on the pulse harness (tests.test_pulse_runtime: workspace T1 of platform "test", members
alice..frank and a team lead, a fake clock and a core with the polls and pulse features), plus
the blocker and RACI features as bot.app registers them; a second workspace (T2) holds things
no member of T1 may see. Pulse rounds run through the real feature (votes, close); the rest is
written straight to the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from cryptography.fernet import Fernet

from bot import directory
from bot.config import Settings
from bot.events import Actor
from bot.features import blockers, raci
from bot.features.blockers import service
from bot.web.asgi import WebApp
from bot.web.dashboard.app import Dashboard
from bot.web.dashboard.cli import make_link
from storage.kudos import Kudos, KudosReceiver
from storage.milestones import Milestone
from storage.models import (
    PromptStatus,
    RoleAssignment,
    RoleName,
    StandupAnswer,
    StandupPrompt,
    StandupRun,
)
from storage.raci import RaciArea, RaciAssignment
from tests.test_pulse_runtime import WED, World, add_pulse, at, polls_of, rounds, vote

BASE = "http://dashboard.test"
XSS = "<script>alert(1)</script>"
PACE = {"key": "pace", "text": "How sustainable was this week's pace?", "kind": "scale"}
OTHER_SECRET = "T2-only: the merger blocker"


@dataclass
class Site:
    world: World
    settings: Settings
    dashboard: Dashboard
    app: WebApp
    other_workspace_id: int
    blocker_ids: dict[str, int]
    standup_id: int

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE)

    async def link(self, member: str, workspace: str | None = None) -> str:
        url = await make_link(
            self.world.db, self.settings, member, workspace, self.world.clock.now()
        )
        return url.removeprefix(self.settings.web.public_url)

    async def sign_in(self, client: httpx.AsyncClient, member: str) -> httpx.Response:
        """Open a fresh one-time link and press its button; the session cookie is then set."""
        page = await client.get(await self.link(member))
        assert page.status_code == 200, page.text
        return await client.post("/login/link", data=form_of(page.text))


def form_of(html: str) -> dict[str, str]:
    """The hidden fields of the first form on a page (token, csrf)."""
    import re

    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))


def settings_for(**sections: Any) -> Settings:
    values: dict[str, Any] = {
        "security": {"secret_key": Fernet.generate_key().decode()},
        "web": {"public_url": BASE},
    }
    values.update(sections)
    return Settings(**values)


async def build_site(world: World, settings: Settings | None = None) -> Site:
    raci.register(world.core)
    blockers.register(world.core)
    settings = settings or settings_for()
    now = world.clock.now()
    # A pulse whose first round is shown (5 answers) and whose second is not (2 answers).
    pulse_id = await add_pulse(world, bank=[PACE], questions_per_round=1, threshold=5)
    for week, voters, choice in ((0, 5, 3), (1, 2, 1)):
        await world.advance_to(at(WED + timedelta(weeks=week), "10:00"))
        found = [r for r in await rounds(world, pulse_id) if r.period_date.weekday() == 2]
        (poll,) = await polls_of(world, found[-1].id)
        for name in ("alice", "bob", "carol", "dana", "erin")[:voters]:
            await vote(world, name, poll.id, choice)
        await world.advance_to(at(WED + timedelta(weeks=week, days=4), "10:00"))
    now = world.clock.now()
    standup_id = await world.add_standup(["alice", "bob", "carol"], name="Daily")
    blocker_ids: dict[str, int] = {}
    async with world.db.transaction() as session:
        workspace = await directory.ensure_workspace(session, "test", "T1", "Test", now)
        boss = await directory.ensure_member(session, workspace, Actor("boss", "boss"), now)
        session.add(
            RoleAssignment(
                workspace_id=workspace.id, member_id=boss.id, role=RoleName.ADMIN, granted_at=now
            )
        )
        world.members["boss"] = boss.id
        # Standup: three days; on the last, alice answers with markup, bob skips.
        statuses = {
            "alice": [PromptStatus.ANSWERED] * 3,
            "bob": [PromptStatus.ANSWERED, PromptStatus.PENDING, PromptStatus.SKIPPED],
            "carol": [PromptStatus.AWAY, PromptStatus.ANSWERED, PromptStatus.PENDING],
        }
        today = now.date()
        for offset in range(3):
            run = StandupRun(
                standup_id=standup_id,
                run_date=today - timedelta(days=2 - offset),
                closes_at=now,
                created_at=now,
            )
            session.add(run)
            await session.flush()
            for name, states in statuses.items():
                prompt = StandupPrompt(
                    run_id=run.id,
                    member_id=world.members[name],
                    status=states[offset],
                    updated_at=now,
                )
                session.add(prompt)
                await session.flush()
                if states[offset] == PromptStatus.ANSWERED:
                    text = (
                        XSS if (name, offset) == ("alice", 2) else f"{name} worked on day {offset}"
                    )
                    session.add(StandupAnswer(prompt_id=prompt.id, question_index=0, text=text))
        area = RaciArea(
            workspace_id=workspace.id,
            name="Payments",
            key="payments",
            channel_id="C-pay",
            created_at=now,
            updated_at=now,
        )
        session.add(area)
        await session.flush()
        session.add(
            RaciAssignment(
                area_id=area.id,
                role="A",
                who=f"member:{world.members['lead']}",
                member_id=world.members["lead"],
                label="lead",
            )
        )
        session.add(
            RaciAssignment(
                area_id=area.id,
                role="R",
                who=f"member:{world.members['alice']}",
                member_id=world.members["alice"],
                label="alice",
            )
        )
        alice = await directory.ensure_member(session, workspace, Actor("alice", "alice"), now)
        for key, text in (("db", "Waiting on the database migration"), ("xss", XSS)):
            found = await service.open_blocker(
                session, workspace_id=workspace.id, reporter=alice, text=text, now=now, area=area
            )
            blocker_ids[key] = found.id
        kudos = Kudos(
            workspace_id=workspace.id,
            giver_id=world.members["bob"],
            reason="Thanks for the review marathon",
            value="craft",
            given_at=now,
        )
        secret = Kudos(
            workspace_id=workspace.id,
            giver_id=world.members["carol"],
            reason="private thanks to dana",
            private=True,
            given_at=now,
        )
        session.add_all([kudos, secret])
        await session.flush()
        session.add(KudosReceiver(kudos_id=kudos.id, receiver_id=world.members["alice"]))
        session.add(KudosReceiver(kudos_id=secret.id, receiver_id=world.members["dana"]))
        session.add(
            Milestone(
                workspace_id=workspace.id,
                name="Launch v2",
                name_key="launch v2",
                due_on=today + timedelta(days=5),
                timezone="UTC",
                created_at=now,
                owner_id=world.members["lead"],
            )
        )
        # Another workspace: nothing of it may show to T1's members.
        other = await directory.ensure_workspace(session, "test", "T2", "Other Corp", now)
        mallory = await directory.ensure_member(session, other, Actor("mallory", "mallory"), now)
        found = await service.open_blocker(
            session, workspace_id=other.id, reporter=mallory, text=OTHER_SECRET, now=now
        )
        blocker_ids["other"] = found.id
        other_id = other.id
    dashboard = Dashboard(settings, world.db, world.clock, base_url=lambda: BASE, core=world.core)
    app = WebApp(_ready)
    app.fallback = dashboard
    return Site(world, settings, dashboard, app, other_id, blocker_ids, standup_id)


async def _ready() -> tuple[bool, str]:
    return True, "ready"
