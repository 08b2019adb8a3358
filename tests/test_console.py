"""The console adapter, driven through the real App (core, scheduler, outbox, delivery worker)
on a SQLite database, with scripted input and captured output."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.console import ConsoleAdapter, create_adapter
from adapters.console.render import Renderer
from bot.app import App
from bot.chat import (
    Actions,
    Bold,
    Button,
    ChannelMention,
    Choice,
    Code,
    Divider,
    Fields,
    Form,
    Header,
    Link,
    OpenForm,
    Response,
    Section,
    Select,
    SelectField,
    TextField,
    UserMention,
    message,
    reply,
    text,
)
from bot.commands.spec import CommandSpec, SubcommandSpec
from bot.config import ConfigError, ConsoleSection, DatabaseSection, Settings
from bot.core import Context
from bot.errors import UserError
from bot.events import ActionInvocation, FormSubmission
from bot.port import Method, Target
from bot.scheduling.scheduler import Occurrence, Schedule
from storage.db import Database
from storage.models import Member, OutboxMessage, Workspace

REPO = Path(__file__).resolve().parents[1]
# Monday 9 March 2026, 12:00 UTC: 13:00 in Berlin, 08:00 in New York (DST began on the 8th).
START = "2026-03-09T12:00:00+00:00"


def make_settings(
    tmp_path: Path, *, start: str = START, member: str = "alice", charts_dir: str | None = None
) -> Settings:
    charts = charts_dir if charts_dir is not None else str(tmp_path / "charts")
    return Settings.model_construct(
        database=DatabaseSection(url=f"sqlite+aiosqlite:///{tmp_path / 'syncup.db'}"),
        console=ConsoleSection(member=member, start=start, charts_dir=charts),
    )


@dataclass
class Run:
    output: str
    code: int
    url: str
    seen: list[Any] = field(default_factory=list)

    def after(self, marker: str) -> str:
        """The output from the first line containing ``marker`` on."""
        index = self.output.index(marker)
        return self.output[self.output.rfind("\n", 0, index) + 1 :]


async def run_console(
    tmp_path: Path,
    lines: Iterable[str],
    *,
    setup: Callable[[App, list[Any]], None] | None = None,
    **settings: Any,
) -> Run:
    config = make_settings(tmp_path, **settings)
    out = io.StringIO()
    app = App(config, ConsoleAdapter(config, lines=lines, out=out))
    seen: list[Any] = []
    if setup is not None:
        setup(app, seen)
    code = await app.run()
    return Run(out.getvalue(), code, config.database.url, seen)


async def member_row(url: str, user_id: str) -> Member:
    db = Database(url)
    try:
        async with db.transaction() as session:
            member = await session.scalar(
                select(Member)
                .join(Workspace)
                .where(Workspace.external_id == "demo", Member.platform_user_id == user_id)
            )
            assert member is not None
            return member
    finally:
        await db.dispose()


async def outbox_rows(url: str) -> list[OutboxMessage]:
    db = Database(url)
    try:
        async with db.transaction() as session:
            return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    finally:
        await db.dispose()


# -- a test-only feature: a post with buttons and a select, a form, a scheduled DM -------------

PROBE = CommandSpec(
    "probe",
    "Test-only command.",
    (
        SubcommandSpec("ask", "Post a question with buttons to #team."),
        SubcommandSpec("dm", "DM bob a message with a button."),
    ),
)

STANDUP_FORM = Form(
    "probe-form",
    "Standup",
    (
        TextField("done", "What did you do?", max_length=40),
        SelectField("mood", "Mood", (Choice("Great", "great"), Choice("Meh", "meh"))),
        TextField("note", "Anything else?", required=False),
    ),
    state="state-1",
)


def install_probe(app: App, seen: list[Any]) -> None:
    async def ask(ctx: Context, args: dict[str, Any]) -> Response:
        question = message(
            Header("Standup time"),
            Section(text("Ready, ", UserMention("bob"), "? See ", ChannelMention("team"), ".")),
            Actions(
                (
                    Button("Answer", "probe:answer", "a1", style="primary"),
                    Button("Skip", "probe:skip", "s1"),
                    Select("probe:mood", (Choice("Great", "great"), Choice("Meh", "meh")), "Mood"),
                )
            ),
        )
        await ctx.post("team", question)
        return reply("Posted.")

    async def dm_bob(ctx: Context, args: dict[str, Any]) -> Response:
        bob = await ctx.session.scalar(
            select(Member).where(
                Member.workspace_id == ctx.workspace.id, Member.platform_user_id == "bob"
            )
        )
        assert bob is not None
        await ctx.dm(bob, message("Hi bob", Actions((Button("Answer", "probe:answer"),))))
        return reply("Sent.")

    async def action(ctx: Context, event: ActionInvocation) -> Response:
        seen.append(event)
        if event.action_id == "probe:answer":
            return OpenForm(STANDUP_FORM)
        if event.action_id == "probe:mood":
            return reply(f"Mood noted: {event.value}.")
        assert event.message_id is not None and event.message_channel_id is not None
        channel = event.message_channel_id
        await ctx.send(
            Method.UPDATE,
            Target(channel_id=channel, message_id=event.message_id),
            message(text(UserMention(ctx.member.platform_user_id), " skipped today.")),
        )
        await ctx.send(
            Method.POST,
            Target(channel_id=channel, thread_of=event.message_id),
            message("A thread reply."),
        )
        return None

    async def submitted(ctx: Context, event: FormSubmission) -> Response:
        seen.append(event)
        if event.values["done"] == "nothing":
            raise UserError("Say what you did, even if it was small.", field="done")
        mention = UserMention(ctx.member.platform_user_id)
        await ctx.post("team", message(text(mention, f" did: {event.values['done']}")))
        return reply(text(Bold("Thanks!"), " Saved."))

    app.core.add_command(PROBE, {"ask": ask, "dm": dm_bob})
    app.core.add_action("probe", action)
    app.core.add_form("probe-form", submitted)


class MorningDm:
    """09:00 every day in bob's zone: a DM with an Answer button."""

    def __init__(self, grace: timedelta = timedelta(minutes=30)) -> None:
        self.grace = grace
        self.ran: list[datetime] = []

    async def schedules(self, session: AsyncSession, now: datetime) -> list[Schedule]:
        trigger = CronTrigger(hour=9, minute=0, timezone=ZoneInfo("America/New_York"))
        return [Schedule("probe:morning:bob", "probe-morning", trigger, grace=self.grace)]

    async def run(self, occurrence: Occurrence) -> None:
        self.ran.append(occurrence.fire_at)
        session = occurrence.session
        bob = await session.scalar(
            select(Member)
            .join(Workspace)
            .where(Workspace.external_id == "demo", Member.platform_user_id == "bob")
        )
        assert bob is not None
        local = occurrence.fire_at.astimezone(ZoneInfo("America/New_York"))
        await occurrence.send(
            bob.workspace_id,
            Method.DM,
            Target(user_id=bob.platform_user_id, dm_channel_id=bob.dm_channel_id),
            message(
                f"Good morning! Standup for {local:%a %d %b}, {local:%H:%M} your time.",
                Actions((Button("Answer", "probe:answer"),)),
            ),
            key=f"{occurrence.key}:dm",
        )


def install_morning(job: MorningDm) -> Callable[[App, list[Any]], None]:
    def setup(app: App, seen: list[Any]) -> None:
        install_probe(app, seen)
        app.scheduler.add_source(job)
        app.scheduler.add_handler("probe-morning", job.run)

    return setup


# -- the account feature through the console ----------------------------------------------------


async def test_help_is_listed_and_console_help_points_to_it(tmp_path: Path) -> None:
    run = await run_console(tmp_path, ["/syncup help", "/help"])
    assert run.code == 0
    assert run.output.startswith("alice> /syncup help\n(only you can see this)\n")
    assert "  /syncup timezone <ZONE>  Set your time zone" in run.output
    assert "Details of one: /syncup help timezone" in run.output
    console_help = run.after("alice> /help")
    assert "/as NAME" in console_help and "/syncup help lists them" in console_help
    # No markup reaches the terminal.
    assert "*" not in run.output and "<@" not in run.output


async def test_timezone_saved(tmp_path: Path) -> None:
    run = await run_console(tmp_path, ["/syncup timezone Europe/Paris", "/members"])
    assert "Saved: your time zone is Europe/Paris (now Mon 13:00 there)." in run.output
    member = await member_row(run.url, "alice")
    assert (member.timezone, member.timezone_set_by_member) == ("Europe/Paris", True)
    assert "@alice    Europe/Paris         Mon 13:00  (workspace admin, you)" in run.output


async def test_bad_timezone_gets_suggestion_and_saves_nothing(tmp_path: Path) -> None:
    run = await run_console(tmp_path, ["/syncup timezone Europe/Pari"])
    assert run.output == (
        "alice> /syncup timezone Europe/Pari\n"
        "(only you can see this)\n"
        '  Unknown timezone "Europe/Pari"; try Europe/Paris.\n'
    )
    member = await member_row(run.url, "alice")
    assert (member.timezone, member.timezone_set_by_member) == ("Europe/Berlin", False)


async def test_demo_workspace_is_seeded(tmp_path: Path) -> None:
    run = await run_console(tmp_path, ["/members"])
    for name, zone in [
        ("alice", "Europe/Berlin"),
        ("bob", "America/New_York"),
        ("chandra", "Asia/Kolkata"),
        ("dana", "America/Los_Angeles"),
        ("eve", "Europe/London"),
        ("femi", "Africa/Lagos"),
        ("gabriel", "America/Sao_Paulo"),
        ("hiro", "Asia/Tokyo"),
    ]:
        member = await member_row(run.url, name)
        assert (member.timezone, member.dm_channel_id) == (zone, f"dm-{name}")
        assert f"@{name:<8} {zone}" in run.output
    assert "Members of Demo team (channel #team):" in run.output


async def test_as_switches_the_acting_member(tmp_path: Path) -> None:
    run = await run_console(tmp_path, ["/as bob", "/syncup me", "/as zed", "/as @Chandra"])
    assert "alice> /as bob\nYou are now @bob (America/New_York).\nbob> /syncup me\n" in run.output
    me = run.after("bob> /syncup me")
    assert "Name: bob" in me and "Time zone: America/New_York (from your profile)" in me
    assert "Role: member" in me
    assert 'bob> /as zed\nNo member named "zed". Usage: /as NAME, one of alice, bob' in run.output
    assert "bob> /as @Chandra\nYou are now @chandra (Asia/Kolkata).\n" in run.output


async def test_permissions_follow_the_acting_member(tmp_path: Path) -> None:
    run = await run_console(
        tmp_path, ["/as bob", "/syncup role @dana admin", "/as alice", "/syncup role @dana admin"]
    )
    assert "bob> /syncup role @dana admin\n(only you can see this)\n  Only admins" in run.output
    assert "alice> /syncup role @dana admin\n(only you can see this)\n  Saved: @dana" in run.output


async def test_a_plain_line_is_a_dm_to_the_bot(tmp_path: Path) -> None:
    run = await run_console(tmp_path, ["", "hello there", "   "])
    assert run.output == (  # blank lines are skipped without a trace
        "alice> hello there\n"
        "→ DM to @alice:\n"
        "  I only understand commands. Type /syncup help to see them.\n"
    )


async def test_interactive_mode_has_a_banner_and_prompts(tmp_path: Path) -> None:
    config = make_settings(tmp_path)
    out = io.StringIO()
    adapter = ConsoleAdapter(config, lines=["/as bob", "/syncup me"], out=out, interactive=True)
    assert await App(config, adapter).run() == 0
    lines = out.getvalue().split("\n")
    banner, rest = lines[:3], "\n".join(lines[3:])
    assert banner == [
        'syncup console: the demo workspace "Demo team" with #team and members alice, bob, '
        "chandra, dana, eve, femi, gabriel, hiro.",
        "You are @alice (Europe/Berlin). Demo clock: Mon 9 Mar 2026 13:00 Europe/Berlin.",
        "Type /help for console commands, /syncup help for the bot's, /quit to leave.",
    ]
    # The terminal echoes what is typed: the console writes only the prompts.
    assert rest.startswith("alice> You are now @bob (America/New_York).\nbob> (only you can")
    assert rest.endswith("bob> \n")


async def test_unknown_bot_command(tmp_path: Path) -> None:
    run = await run_console(tmp_path, ["/nosuch thing"])
    assert "Unknown command /nosuch. Type /syncup help." in run.output


# -- buttons, selects and forms ---------------------------------------------------------------


async def test_buttons_selects_updates_and_threads(tmp_path: Path) -> None:
    run = await run_console(
        tmp_path,
        ["/probe ask", "a3", "/press A2", "a2", "/press x", "/press 2", "a9", "2"],
        setup=install_probe,
    )
    out = run.output
    assert (
        "alice> /probe ask\n"
        "(only you can see this)\n"
        "  Posted.\n"
        "#1 → #team:\n"
        "  Standup time\n"
        "  Ready, @bob? See #team.\n"
        "  [a1] Answer  [a2] Skip\n"
        "  Mood: [a3] Great  [a4] Meh\n"
    ) in out
    assert "alice> a3\n(only you can see this)\n  Mood noted: great.\n" in out
    assert (
        "alice> /press A2\n"
        "→ update of #1 in #team:\n"
        "  @alice skipped today.\n"
        "#2 → #team (thread of #1):\n"
        "  A thread reply.\n"
    ) in out
    # The update replaced the message: its old buttons are gone.
    assert "alice> a2\nThere is no button [a2] to press.\n" in out
    assert "alice> /press x\nUsage: /press b2 (or just b2)" in out
    assert "alice> /press 2\nUsage: /press b2 (or just b2)" in out
    assert "alice> a9\nThere is no button [a9] to press.\n" in out
    # A number alone is a DM (an answer), never a button.
    assert "alice> 2\n→ DM to @alice:\n  I only understand commands." in out
    mood, skip = run.seen
    assert (mood.action_id, mood.value, mood.values) == ("probe:mood", "great", ("great",))
    assert (mood.message_channel_id, mood.message_id) == ("team", "m1")
    assert (skip.action_id, skip.value, skip.message_id) == ("probe:skip", "s1", "m1")


async def test_form_field_by_field_with_errors_reprompted(tmp_path: Path) -> None:
    too_long = "x" * 41
    run = await run_console(
        tmp_path,
        ["/probe ask", "a1", too_long, "nothing", "7", "meh", "", "shipped it", "/syncup me"],
        setup=install_probe,
    )
    out = run.after("alice> a1")
    assert out.startswith(
        "alice> a1\n"
        "Form: Standup  (/cancel to close it)\n"
        f"  What did you do?: {too_long}\n"
        "  At most 40 characters, please (41 given).\n"
        "  What did you do?: nothing\n"
        "    1) Great\n"
        "    2) Meh\n"
        '  Mood: 7\n  "7" is not one of the options; type a number from 1 to 2.\n'
        "  Mood: meh\n"
        "  Anything else? (optional):\n"
        # The core refused "done": only that field is asked again, with the reason.
        "  ! Say what you did, even if it was small.\n"
        "  What did you do?: shipped it\n"
        "(only you can see this)\n"
        "  Thanks! Saved.\n"
        "#2 → #team:\n"
        "  @alice did: shipped it\n"
        "alice> /syncup me\n"
    )
    first, second = (e for e in run.seen if isinstance(e, FormSubmission))
    assert first.values == {"done": "nothing", "mood": "meh", "note": ""}
    assert second.values == {"done": "shipped it", "mood": "meh", "note": ""}
    assert (first.form_id, first.state) == ("probe-form", "state-1")
    assert first.origin.event_id != second.origin.event_id


async def test_form_required_field_and_cancel(tmp_path: Path) -> None:
    run = await run_console(
        tmp_path, ["/probe ask", "a1", "", "done", "/cancel", "/cancel"], setup=install_probe
    )
    assert (
        "  What did you do?:\n"
        "  This field is required; answer it, or type /cancel.\n"
        "  What did you do?: done\n"
        "    1) Great\n"
        "    2) Meh\n"
        "  Mood: /cancel\n"
        "Form closed; nothing was submitted.\n"
        "alice> /cancel\n"
        "No form is open; nothing to cancel.\n"
    ) in run.output
    assert not [e for e in run.seen if isinstance(e, FormSubmission)]


async def test_input_ending_inside_a_form_submits_nothing(tmp_path: Path) -> None:
    run = await run_console(tmp_path, ["/probe ask", "a1", "half an answer"], setup=install_probe)
    assert run.code == 0
    assert run.output.endswith("Form closed; nothing was submitted.\n")


async def test_dm_with_buttons_to_another_member(tmp_path: Path) -> None:
    run = await run_console(tmp_path, ["/probe dm", "a1", "/as bob", "a1"], setup=install_probe)
    assert "#1 → DM to @bob:\n  Hi bob\n  [a1] Answer\n" in run.output
    assert "alice> a1\nButton [a1] is on a message only @bob can see" in run.output
    assert "bob> a1\nForm: Standup" in run.output
    (press,) = run.seen
    assert (press.message_channel_id, press.message_id) == ("dm-bob", "m1")
    assert press.origin.channel_id == "dm-bob"


# -- units: rendering, the clock, configuration -------------------------------------------------


def test_renderer_prints_no_markup_and_neutralises_control_characters() -> None:
    renderer = Renderer({"U1": "bob"}, {"C1": "team"})
    rendered = renderer.message(
        message(
            Header("Weekly digest"),
            Section(
                text(
                    Bold("Shipped"),
                    " by ",
                    UserMention("U1"),
                    " in ",
                    ChannelMention("C9", "general"),
                    ": ",
                    Code("v2"),
                    " ",
                    Link("https://example.com", "notes"),
                    " *not bold* <@U1> \x1b[31mred\nsecond line",
                )
            ),
            Fields((("Owner", text(UserMention("U2", "dana"))), ("Age", text("3 days")))),
            Divider(),
        ),
        letter="e",
    )
    assert rendered.lines == [
        "  Weekly digest",
        "  Shipped by @bob in #general: v2 notes (https://example.com) *not bold* <@U1> "
        "\N{REPLACEMENT CHARACTER}[31mred",
        "  second line",
        "  Owner: @dana",
        "  Age: 3 days",
        "  " + "─" * 40,
    ]
    assert rendered.controls == []


def test_bad_console_settings_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"console\.member.*alice, bob, chandra, dana"):
        create_adapter(make_settings(tmp_path, member="zed"))
    with pytest.raises(ConfigError, match=r"console\.start.*ISO date-time"):
        create_adapter(make_settings(tmp_path, start="next monday"))
    adapter = create_adapter(make_settings(tmp_path, start="2026-03-09T08:55", member="bob"))
    # A naive start is in the console member's zone.
    assert abs(adapter.clock().now() - datetime(2026, 3, 9, 12, 55, tzinfo=UTC)) < timedelta(
        seconds=5
    )


# -- the real command line ----------------------------------------------------------------------


def test_syncup_run_as_a_script(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCUP_")}
    env["SYNCUP_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'syncup.db'}"
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        input="/syncup help\n/syncup timezone Europe/Pari\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("alice> /syncup help\n(only you can see this)\n")
    assert "/syncup timezone <ZONE>  Set your time zone" in result.stdout
    assert result.stdout.endswith(
        "alice> /syncup timezone Europe/Pari\n"
        "(only you can see this)\n"
        '  Unknown timezone "Europe/Pari"; try Europe/Paris.\n'
    )
    # Logs go to stderr, never into the transcript.
    assert "INFO" not in result.stdout and "syncup started" in result.stderr
