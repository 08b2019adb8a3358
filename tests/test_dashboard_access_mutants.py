"""What the dashboard's authorisation promises, edge by edge (found by mutation testing, issue 17),
on SQLite and PostgreSQL: a signed-in account sees exactly the installed workspaces of its own
platform where it is a member, in name order, with the permission it has there; its session
cookie is read back whole, only under the dashboard's key and the session's own salt, and only
until it expires (the pre-sign-in cookie likewise, for ten minutes); a CSRF token matches only
an equal, present token.

``access`` and ``sessions`` are what every dashboard request goes through (tests/test_dashboard.py
and tests/test_dashboard_signin.py drive them over HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner

from bot import directory
from bot.commands.spec import Permission
from bot.events import Actor
from bot.web.dashboard import access, sessions
from bot.web.dashboard.sessions import PRE_SECONDS, Signer, same
from storage.db import Database
from storage.models import RoleAssignment, RoleName, Workspace

NOW = datetime(2026, 12, 7, 9, tzinfo=UTC)


# --- who sees which workspace ------------------------------------------------------------------


async def make_workspaces(database: Database) -> dict[str, int]:
    """U1 is a member of several Slack workspaces (two named alike), is also a Discord user with
    the same id, is in one uninstalled workspace, and is not in one where only U2 is.

    The two alike-named workspaces are stored out of their id order both ways a query may read
    them: U1 joined the later one first, and the earlier one was renamed last (PostgreSQL
    writes an updated row at the end of its table)."""
    ids: dict[str, int] = {}
    roles = {"alpha-1": RoleName.ADMIN, "alpha-2": RoleName.TEAM_LEAD}  # U1's, by role
    places = (
        ("beta", "slack", "T1", "Beta", "U1", False),
        ("alpha-1", "slack", "T2", "Alpha (new)", "U1", False),
        ("alpha-2", "slack", "T3", "Alpha", "U1", False),
        ("guild", "discord", "G1", "Aardvark", "U1", False),
        ("gone", "slack", "T4", "Aaron", "U1", False),
        ("theirs", "slack", "T5", "Abc", "U2", False),
        ("owned", "slack", "T6", "Zed", "U1", True),
    )
    async with database.transaction() as session:
        workspaces = {
            key: await directory.ensure_workspace(session, platform, external, name, NOW)
            for key, platform, external, name, *_ in places
        }
        for key, _, _, _, user, platform_admin in reversed(places):
            workspace = workspaces[key]
            actor = Actor(user, user, is_platform_admin=platform_admin)
            member = await directory.ensure_member(session, workspace, actor, NOW)
            ids[key] = workspace.id
            if key == "gone":
                workspace.uninstalled_at = NOW
            if key in roles:
                session.add(
                    RoleAssignment(
                        workspace_id=workspace.id,
                        member_id=member.id,
                        role=roles[key],
                        granted_at=NOW,
                    )
                )
    async with database.transaction() as session:
        renamed = await session.get(Workspace, ids["alpha-1"])
        assert renamed is not None
        renamed.name = "Alpha"
    return ids


async def test_an_account_sees_its_own_platforms_installed_workspaces_in_name_order(
    database: Database,
) -> None:
    ids = await make_workspaces(database)
    async with database.transaction() as session:
        slack = await access.workspaces_of(session, "slack", "U1")
        discord = await access.workspaces_of(session, "discord", "U1")
        other = await access.workspaces_of(session, "slack", "U2")
        nobody = await access.workspaces_of(session, "slack", "U3")
    # Alike names in the order they were added; not Discord's, not the uninstalled one, not T5.
    assert [w.id for w in slack] == [ids["alpha-1"], ids["alpha-2"], ids["beta"], ids["owned"]]
    assert [w.id for w in discord] == [ids["guild"]]
    assert [w.id for w in other] == [ids["theirs"]]
    assert nobody == []


async def test_a_seat_is_only_in_a_workspace_of_the_accounts_platform_where_it_is_a_member(
    database: Database,
) -> None:
    ids = await make_workspaces(database)
    async with database.transaction() as session:
        beta = await access.seat(session, "slack", "U1", ids["beta"])
        assert beta is not None
        assert beta.workspace.id == ids["beta"] and beta.workspace.name == "Beta"
        assert beta.member.platform_user_id == "U1" and beta.member.workspace_id == ids["beta"]
        # The same user id on another platform, an uninstalled workspace, someone else's, none.
        assert await access.seat(session, "slack", "U1", ids["guild"]) is None
        assert await access.seat(session, "discord", "U1", ids["beta"]) is None
        assert await access.seat(session, "slack", "U1", ids["gone"]) is None
        assert await access.seat(session, "slack", "U1", ids["theirs"]) is None
        assert await access.seat(session, "slack", "U2", ids["beta"]) is None
        assert await access.seat(session, "slack", "U1", max(ids.values()) + 1) is None
        guild = await access.seat(session, "discord", "U1", ids["guild"])
        assert guild is not None and guild.workspace.id == ids["guild"]


async def test_a_seat_carries_the_permission_the_member_has_in_chat(database: Database) -> None:
    ids = await make_workspaces(database)
    async with database.transaction() as session:
        seats = {key: await access.seat(session, "slack", "U1", ids[key]) for key in ids}
    expected = {
        "beta": (Permission.MEMBER, False),
        "alpha-1": (Permission.ADMIN, True),  # by role
        "alpha-2": (Permission.TEAM_LEAD, False),  # a team lead is no dashboard admin
        "owned": (Permission.ADMIN, True),  # the platform's own admin
    }
    for key, (permission, admin) in expected.items():
        found = seats[key]
        assert found is not None, key
        assert (found.permission, found.admin) == (permission, admin), key


# --- session cookies ---------------------------------------------------------------------------


KEY = Fernet.generate_key().decode()
HOURS_12 = 12 * 3600


class Wall:
    """itsdangerous's clock (the time a cookie is signed at and read at), set by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1_800_000_000
        monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda _signer: self.now)


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> Wall:
    return Wall(monkeypatch)


def test_a_session_cookie_reads_back_whole_with_a_fresh_csrf_token() -> None:
    signer = Signer(KEY, HOURS_12)
    first = signer.read_session(signer.session_cookie("slack", "U1", "Ursula"))
    second = signer.read_session(signer.session_cookie("slack", "U1", "Ursula"))
    assert first is not None and second is not None
    assert (first.platform, first.user_id, first.name) == ("slack", "U1", "Ursula")
    assert first.csrf != second.csrf  # a token per sign-in
    assert len(first.csrf) == 32  # 24 random bytes, URL-safe base64


def test_another_replica_with_the_same_key_reads_the_session() -> None:
    cookie = Signer(KEY, HOURS_12).session_cookie("discord", "4242", "dee")
    read = Signer(KEY, HOURS_12).read_session(cookie)
    assert read is not None and (read.platform, read.user_id) == ("discord", "4242")
    assert Signer(Fernet.generate_key().decode(), HOURS_12).read_session(cookie) is None


def test_a_session_signed_by_an_earlier_release_is_still_read() -> None:
    """The cookie's format (salt and field names) is what keeps people signed in across an
    upgrade: a cookie made by hand with it is read; one under another salt is not."""
    data = {"p": "slack", "u": "U1", "n": "Ursula", "c": "tok"}
    made = URLSafeTimedSerializer(KEY, salt="syncup.dashboard.session").dumps(data)
    assert Signer(KEY, HOURS_12).read_session(made) == sessions.Session(
        "slack", "U1", "Ursula", "tok"
    )
    pre = URLSafeTimedSerializer(KEY, salt="syncup.dashboard.signin").dumps({"s": "st", "p": "x"})
    assert Signer(KEY, HOURS_12).read_pre(pre) == {"s": "st", "p": "x"}
    other = URLSafeTimedSerializer(KEY, salt="something.else").dumps(data)
    assert Signer(KEY, HOURS_12).read_session(other) is None


def test_a_sign_in_cookie_is_no_session_and_a_session_no_sign_in_cookie() -> None:
    signer = Signer(KEY, HOURS_12)
    assert signer.read_session(signer.pre_cookie("state", "slack")) is None
    assert signer.read_pre(signer.session_cookie("slack", "U1", "Ursula")) is None


@pytest.mark.parametrize("raw", [None, "", "junk", "a.b.c"])
def test_no_cookie_or_a_malformed_one_is_no_session(raw: str | None) -> None:
    signer = Signer(KEY, HOURS_12)
    assert signer.read_session(raw) is None
    assert signer.read_pre(raw) is None


@pytest.mark.parametrize(
    "data", [{"p": "slack", "u": "U1", "n": "Ursula"}, ["slack", "U1", "Ursula", "c"], "text", 7]
)
def test_a_signed_cookie_without_the_session_fields_is_no_session(data: object) -> None:
    made = URLSafeTimedSerializer(KEY, salt="syncup.dashboard.session").dumps(data)
    assert Signer(KEY, HOURS_12).read_session(made) is None
    pre = URLSafeTimedSerializer(KEY, salt="syncup.dashboard.signin").dumps(data)
    expected = {k: str(v) for k, v in data.items()} if isinstance(data, dict) else None
    assert Signer(KEY, HOURS_12).read_pre(pre) == expected


def test_a_session_lasts_exactly_its_configured_time(wall: Wall) -> None:
    signer = Signer(KEY, HOURS_12)
    assert signer.session_seconds == HOURS_12
    cookie = signer.session_cookie("slack", "U1", "Ursula")
    wall.now += HOURS_12
    assert signer.read_session(cookie) is not None
    wall.now += 1
    assert signer.read_session(cookie) is None
    # A shorter setting ends it sooner.
    short = Signer(KEY, 60)
    cookie = short.session_cookie("slack", "U1", "Ursula")
    wall.now += 61
    assert short.read_session(cookie) is None


def test_a_sign_in_cookie_lasts_ten_minutes(wall: Wall) -> None:
    assert PRE_SECONDS == 600
    signer = Signer(KEY, HOURS_12)
    cookie = signer.pre_cookie("state-1", "discord")
    wall.now += 600
    assert signer.read_pre(cookie) == {"s": "state-1", "p": "discord"}
    wall.now += 1
    assert signer.read_pre(cookie) is None


# --- CSRF tokens -------------------------------------------------------------------------------


def test_a_csrf_token_matches_only_an_equal_present_token() -> None:
    assert same("tok-1", "tok-1")
    assert not same("tok-1", "tok-2")
    assert not same("tok-1", "tok-1 ")
    for a, b in (("", ""), (None, None), ("tok", None), (None, "tok"), ("", "tok"), ("tok", "")):
        assert not same(a, b), (a, b)
