"""The dispatcher's promises as a user or an operator sees them, each written for a mutant of
bot/core.py that the earlier tests let through (issue 17): every outcome answered, counted and
logged with the event it was; the processed-events row; what a handler's sends queue; after-
commit work; routing of actions, forms, shortcuts and DMs; NUL refusals per kind of input;
background work; registration mistakes caught when the app starts."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time
import weakref
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.batching import Batch
from bot.chat import MESSAGE_ADAPTER, FormErrors, Response, message, reply
from bot.commands.spec import CommandSpec, OptionSpec, OptionType, SubcommandSpec
from bot.core import Context, Core, Shortcut
from bot.errors import UserError
from bot.events import (
    ActionInvocation,
    Actor,
    CommandInvocation,
    DirectMessageReceived,
    FormSubmission,
    Origin,
    ShortcutInvocation,
)
from bot.port import ChannelInfo, Method
from storage.db import Database
from storage.models import Channel, Member, OutboxMessage, ProcessedEvent, Workspace
from storage.outages import DatabaseUnavailable, Outage
from tests.fakes.clock import FakeClock
from tests.test_core import ALICE, BOB, command, said
from tests.test_directory import FakeDirectory

NOW = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
NUL_FROM = "Remove the NUL character (\\0) from your {what}: syncup can't store it."
WHO = "by U1 in test:W1"  # how the log lines name alice's events

SPEC = CommandSpec(
    "probe",
    "test command",
    (
        SubcommandSpec("post", "queue a post", (OptionSpec("words", OptionType.TEXT, "what"),)),
        SubcommandSpec("three", "two posts and a DM"),
        SubcommandSpec("keyed", "a send with its own key, and a reply to it"),
        SubcommandSpec("half", "a user error"),
        SubcommandSpec("fields", "a user error with field errors"),
        SubcommandSpec(
            "crash", "a bug", (OptionSpec("why", OptionType.TEXT, "why", required=False),)
        ),
        SubcommandSpec("down", "the database goes away"),
        SubcommandSpec("after", "three after-commit callbacks, the second fails"),
        SubcommandSpec("quiet", "sends nothing"),
        SubcommandSpec("reschedule", "changes schedules"),
        SubcommandSpec("unrecorded", "a user error, and the event cannot be recorded"),
        SubcommandSpec("where", "a channel to post in", (OptionSpec("to", OptionType.TEXT, "ch"),)),
    ),
)


class World:
    def __init__(self, database: Database, tmp_path: Path) -> None:
        self.database = database
        self.core = Core(database, FakeClock(NOW))
        self.ran: list[str] = []
        self.wakes = 0
        self.schedule_changes = 0
        self.broken = Database(f"sqlite+aiosqlite:///{tmp_path / 'not-migrated.db'}")
        core = self.core

        async def post(ctx: Context, args: dict[str, Any]) -> Response:
            await ctx.post("C1", message(args["words"]))
            return reply("queued")

        async def three(ctx: Context, args: dict[str, Any]) -> Response:
            await ctx.post("C1", message("first"))
            await ctx.post("C2", message("second"))
            await ctx.dm(ctx.member, message("a DM"))
            return reply("sent")

        async def keyed(ctx: Context, args: dict[str, Any]) -> Response:
            first = await ctx.post("C1", message("parent"), key="my-own-key")
            await ctx.post("C1", message("child"), depends_on=first)
            await ctx.dm(ctx.member, message("a note"), key="my-dm-key", depends_on=first)
            return reply("sent")

        async def half(ctx: Context, args: dict[str, Any]) -> Response:
            await ctx.post("C1", message("never"))
            raise UserError("The second step is wrong: fix X.")

        async def fields(ctx: Context, args: dict[str, Any]) -> Response:
            raise UserError("Check the name.", errors={"name": "Too long."})

        async def crash(ctx: Context, args: dict[str, Any]) -> Response:
            raise RuntimeError("boom")

        async def down(ctx: Context, args: dict[str, Any]) -> Response:
            raise DatabaseUnavailable(Outage.UNREACHABLE, "ConnectionRefusedError")

        def fail() -> None:
            raise RuntimeError("callback bug")

        async def after(ctx: Context, args: dict[str, Any]) -> Response:
            ctx.after_commit(lambda: self.ran.append("first"))
            ctx.after_commit(fail)
            ctx.after_commit(lambda: self.ran.append("third"))
            return reply("done")

        async def quiet(ctx: Context, args: dict[str, Any]) -> Response:
            return reply("nothing to send")

        async def reschedule(ctx: Context, args: dict[str, Any]) -> Response:
            ctx.schedules_changed = True
            return reply("rescheduled")

        async def unrecorded(ctx: Context, args: dict[str, Any]) -> Response:
            ctx.core.db = self.broken  # the database the event would be recorded in is broken
            raise UserError("Not like that.")

        async def where(ctx: Context, args: dict[str, Any]) -> Response:
            channel = await ctx.channel_to_post(args["to"])
            return reply(f"{channel.external_id} {channel.name}")

        core.add_command(
            SPEC,
            {
                "post": post,
                "three": three,
                "keyed": keyed,
                "half": half,
                "fields": fields,
                "crash": crash,
                "down": down,
                "after": after,
                "quiet": quiet,
                "reschedule": reschedule,
                "unrecorded": unrecorded,
                "where": where,
            },
        )

        def wake() -> None:
            self.wakes += 1

        async def changed() -> None:
            self.schedule_changes += 1

        core.on_outbox.append(wake)
        core.on_schedules_changed.append(changed)

    def counted(self, kind: str, outcome: str) -> float:
        value = self.core.metrics.registry.get_sample_value(
            "syncup_events_total", {"kind": kind, "outcome": outcome}
        )
        return value or 0.0

    async def rows(self, model: type[Any]) -> list[Any]:
        async with self.database.read() as session:
            found = list((await session.scalars(select(model))).all())
            session.expunge_all()  # plain values to compare once the session is gone
            return found


@pytest.fixture
async def world(database: Database, tmp_path: Path) -> Any:
    built = World(database, tmp_path)
    try:
        yield built
    finally:
        await built.broken.dispose()


def origin(event_id: str, platform: str = "test") -> Origin:
    return Origin(platform, "W1", event_id, "Test", channel_id="C1")


def logged(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bot.core" and r.levelno == level]


# -- answers, counts and log lines for every outcome ------------------------------------------


async def test_every_outcome_is_counted_under_its_kind_and_timed(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.core")
    started = time.perf_counter()
    assert said(await world.core.handle(command("/probe post hi", event_id="ok-1"))) == "queued"
    assert await world.core.handle(command("/probe post hi", event_id="ok-1")) is None
    await world.core.handle(command("/probe half"))
    await world.core.handle(command("/probe crash"))
    await world.core.handle(command("/probe down"))
    await world.core.handle(command("/probe post a\x00b"))
    took = time.perf_counter() - started
    for outcome in ("ok", "duplicate", "user_error", "error", "unavailable", "refused"):
        assert world.counted("command", outcome) == 1, outcome
    registry = world.core.metrics.registry
    timed = {"kind": "command"}
    assert registry.get_sample_value("syncup_event_handling_seconds_count", timed) == 6
    # What each event took, as the core measured it, lies within what the calls took together.
    spent = registry.get_sample_value("syncup_event_handling_seconds_sum", timed)
    assert spent is not None and 0 < spent <= took
    assert "duplicate test event ok-1 ignored" in logged(caplog)


async def test_a_user_error_is_answered_logged_and_recorded(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.core")
    answer = await world.core.handle(command("/probe half", event_id="half-1"))
    assert said(answer) == "The second step is wrong: fix X."
    assert logged(caplog) == [
        f"user error in /probe half {WHO} (event half-1): The second step is wrong: fix X."
    ]
    [row] = await world.rows(ProcessedEvent)
    assert (row.platform, row.event_id, row.received_at) == ("test", "half-1", NOW)
    assert await world.rows(OutboxMessage) == []
    assert world.wakes == 0  # its send was rolled back: nothing to wake the worker for


async def test_field_errors_of_a_command_are_a_private_reply_not_a_form(world: World) -> None:
    answer = await world.core.handle(command("/probe fields"))
    assert said(answer) == "Check the name."


async def test_a_bug_gets_a_reference_that_is_in_the_log_and_the_retry_is_a_duplicate(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.core")
    event = command("/probe crash now please", event_id="crash-1")
    text = said(await world.core.handle(event))
    found = re.fullmatch(
        r"Sorry, something went wrong on syncup's side \(ref ([0-9a-f]{8})\)\.", text
    )
    assert found, text
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    # The log names the command and its first word only: never the rest of what was typed.
    assert record.getMessage() == f"/probe crash {WHO} (event crash-1) failed (ref {found[1]})"
    assert record.exc_info is not None
    assert await world.core.handle(event) is None  # recorded: the platform's retry does nothing
    assert world.counted("command", "duplicate") == 1


async def test_log_lines_name_a_typed_and_a_bare_command_by_its_subcommand(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.core")
    typed = CommandInvocation(origin("typed-1"), ALICE, "probe", subcommand="crash", options={})
    assert "ref" in said(await world.core.handle(typed))
    bare = said(await world.core.handle(command("/probe", event_id="bare-1")))
    assert bare == "Type /probe help to see what it can do."
    unknown = said(await world.core.handle(command("/nosuch thing", event_id="unknown-1")))
    assert unknown == "Unknown command /nosuch. Type /syncup help."
    assert f"/probe crash {WHO} (event typed-1) failed" in logged(caplog, logging.ERROR)[0]
    assert logged(caplog) == [
        f"user error in /probe {WHO} (event bare-1): Type `/probe help` to see what it can do.",
        f"user error in /nosuch thing {WHO} (event unknown-1): "
        "Unknown command /nosuch. Type `/syncup help`.",
    ]


async def test_typed_options_with_an_unknown_or_missing_subcommand_are_refused(
    world: World,
) -> None:
    unknown = CommandInvocation(origin("t-1"), ALICE, "probe", subcommand="nosuch", options={})
    assert said(await world.core.handle(unknown)) == "Unknown command /probe nosuch."
    none = CommandInvocation(origin("t-2"), ALICE, "probe", options={})
    assert said(await world.core.handle(none)) == "Unknown command /probe None."
    typed = CommandInvocation(origin("t-3"), ALICE, "probe", "", "post", {"words": "typed"})
    assert said(await world.core.handle(typed)) == "queued"
    assert [row.payload for row in await world.rows(OutboxMessage)] == [
        MESSAGE_ADAPTER.dump_python(message("typed"), mode="json")
    ]


async def test_typed_options_that_do_not_fit_are_answered_with_the_usage(world: World) -> None:
    """A platform's typed command (Discord's slash options) missing a required option, or with
    one the subcommand does not have, is told what is wrong and how to type it: not an apology
    for a failure."""
    missing = CommandInvocation(origin("u-1"), ALICE, "probe", "", "post", {})
    usage = "Usage: /probe post <WORDS...>."
    assert said(await world.core.handle(missing)) == f"WORDS is missing. {usage}"
    extra = CommandInvocation(origin("u-2"), ALICE, "probe", "", "post", {"words": "a", "x": 1})
    assert said(await world.core.handle(extra)) == f"Unknown option x. {usage}"
    assert world.counted("command", "user_error") == 2
    assert world.counted("command", "error") == 0
    assert await world.rows(OutboxMessage) == []


async def test_an_unavailable_database_is_answered_plainly_and_logged_without_a_traceback(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.core")
    answer = said(await world.core.handle(command("/probe down", event_id="down-1")))
    assert answer == "syncup cannot reach its database right now; please try again shortly."
    assert logged(caplog) == [
        f"/probe down {WHO} (event down-1) not handled: the database is unavailable"
    ]
    assert all(r.exc_info is None for r in caplog.records)


async def test_an_event_that_cannot_be_recorded_is_still_answered_and_logged(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.core")
    answer = said(await world.core.handle(command("/probe unrecorded", event_id="lost-1")))
    assert answer == "Not like that."
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert (
        record.getMessage() == f"could not record /probe unrecorded {WHO} (event lost-1) as handled"
    )
    assert record.exc_info is not None


# -- what the event leaves in the database ------------------------------------------------------


async def test_the_workspace_and_member_are_stored_as_the_event_names_them(world: World) -> None:
    await world.core.handle(command("/probe quiet", event_id="ws-1"))
    [workspace] = await world.rows(Workspace)
    assert (workspace.platform, workspace.external_id, workspace.name) == ("test", "W1", "Test")
    assert workspace.created_at == NOW
    [member] = await world.rows(Member)
    assert (member.platform_user_id, member.display_name, member.created_at) == ("U1", "alice", NOW)


async def test_the_same_event_id_on_two_platforms_is_two_events(world: World) -> None:
    slack = CommandInvocation(origin("same-1", "slack"), ALICE, "probe", "post one")
    discord = CommandInvocation(origin("same-1", "discord"), ALICE, "probe", "post two")
    assert said(await world.core.handle(slack)) == "queued"
    assert said(await world.core.handle(discord)) == "queued"
    assert await world.core.handle(discord) is None
    rows = await world.rows(ProcessedEvent)
    assert sorted((r.platform, r.event_id) for r in rows) == [
        ("discord", "same-1"),
        ("slack", "same-1"),
    ]
    keys = sorted(r.idempotency_key for r in await world.rows(OutboxMessage))
    assert keys == ["discord:same-1:1", "slack:same-1:1"]


async def test_a_dm_without_its_channel_id_keeps_the_known_dm_channel(world: World) -> None:
    known = DirectMessageReceived(origin("dm-1"), BOB, "hello", dm_channel_id="D2")
    await world.core.handle(known)
    await world.core.handle(DirectMessageReceived(origin("dm-2"), BOB, "again"))
    [member] = await world.rows(Member)
    assert member.dm_channel_id == "D2"


# -- what a handler's sends queue ---------------------------------------------------------------


async def test_sends_are_queued_with_keys_from_the_event_in_order(world: World) -> None:
    await world.core.handle(command("/probe three", event_id="ev-9"))
    rows = sorted(await world.rows(OutboxMessage), key=lambda r: r.id)
    [workspace] = await world.rows(Workspace)
    [member] = await world.rows(Member)
    assert [r.idempotency_key for r in rows] == ["test:ev-9:1", "test:ev-9:2", "test:ev-9:3"]
    assert [r.method for r in rows] == [Method.POST, Method.POST, Method.DM]
    assert [r.target.get("channel_id") for r in rows] == ["C1", "C2", None]
    assert rows[2].target.get("user_id") == "U1" == member.platform_user_id
    assert [r.payload for r in rows] == [
        MESSAGE_ADAPTER.dump_python(message(t), mode="json") for t in ("first", "second", "a DM")
    ]
    assert {r.workspace_id for r in rows} == {workspace.id}
    assert {(r.created_at, r.next_attempt_at) for r in rows} == {(NOW, NOW)}
    assert world.wakes == 1  # the delivery worker is woken once the event committed


async def test_a_dm_goes_to_the_members_known_dm_channel(world: World) -> None:
    await world.core.handle(DirectMessageReceived(origin("dm-1"), ALICE, "hi", dm_channel_id="D1"))
    await world.core.handle(command("/probe three"))
    [dm] = [r for r in await world.rows(OutboxMessage) if r.method == Method.DM]
    assert (dm.target.get("user_id"), dm.target.get("dm_channel_id")) == ("U1", "D1")


async def test_a_send_keeps_its_own_key_and_what_it_depends_on(world: World) -> None:
    await world.core.handle(command("/probe keyed", event_id="k-1"))
    parent, child, note = sorted(await world.rows(OutboxMessage), key=lambda r: r.id)
    assert parent.idempotency_key == "my-own-key"
    assert child.idempotency_key == "test:k-1:1"  # the first key the event derives itself
    assert note.idempotency_key == "my-dm-key"
    assert (parent.depends_on_id, child.depends_on_id, note.depends_on_id) == (
        None,
        parent.id,
        parent.id,
    )


async def test_the_worker_is_woken_only_for_sends_and_schedules_only_for_changes(
    world: World,
) -> None:
    await world.core.handle(command("/probe quiet"))
    assert (world.wakes, world.schedule_changes) == (0, 0)
    await world.core.handle(command("/probe reschedule"))
    assert (world.wakes, world.schedule_changes) == (0, 1)
    await world.core.handle(command("/probe post hi"))
    assert (world.wakes, world.schedule_changes) == (1, 1)


async def test_a_failing_after_commit_callback_is_logged_and_the_others_still_run(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    answer = await world.core.handle(command("/probe after", event_id="after-1"))
    assert said(answer) == "done"
    assert world.ran == ["first", "third"]
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert (
        record.getMessage() == f"after-commit callback of /probe after {WHO} (event after-1) failed"
    )
    assert record.exc_info is not None
    assert world.counted("command", "ok") == 1


# -- a channel to post in -----------------------------------------------------------------------


async def test_a_channel_to_post_in_is_checked_with_the_platform_each_time(world: World) -> None:
    platform = FakeDirectory()
    world.core.directory = platform
    assert said(await world.core.handle(command("/probe where #team"))) == "C1 team"
    [stored] = await world.rows(Channel)
    assert (stored.external_id, stored.name, stored.created_at) == ("C1", "team", NOW)
    platform.channels["C1"] = ChannelInfo(
        "C1", "team", can_post=False, reason="Removed; invite me."
    )
    assert said(await world.core.handle(command("/probe where #team"))) == "Removed; invite me."
    assert said(await world.core.handle(command("/probe where #random"))).startswith(
        "I can't post in #random"
    )


async def test_without_a_platform_directory_only_a_known_channel_will_do(world: World) -> None:
    unknown = said(await world.core.handle(command("/probe where #team")))
    assert unknown == "I don't know the channel #team. Invite syncup to it, then try again."


# -- routing ------------------------------------------------------------------------------------


async def test_an_action_id_with_more_parts_still_reaches_its_batch(world: World) -> None:
    """Presses group-commit by the action id's first part: ``probe:7:x`` is a ``probe`` press
    and joins the batch like ``probe:7`` does, rather than being handled alone."""
    batched: list[str] = []

    async def alone(ctx: Context, event: ActionInvocation) -> Response:
        return reply(f"alone {event.action_id}")

    async def batch(pressed: Batch[ActionInvocation]) -> None:
        for item in pressed.items:
            batched.append(item.event.action_id)
            item.response = reply(f"batched {item.event.action_id}")

    world.core.add_action("probe", alone, batch=batch)
    for n, action_id in enumerate(("probe:7", "probe:7:x")):
        pressed = ActionInvocation(origin(f"batch-{n}"), BOB, action_id)
        assert said(await world.core.handle(pressed)) == f"batched {action_id}"
    assert batched == ["probe:7", "probe:7:x"]


async def test_a_burst_of_presses_is_committed_in_batches_of_at_most_max_batch(
    world: World,
) -> None:
    """An action registered with ``max_batch`` takes at most that many presses per transaction
    (polls: ``MAX_VOTES``, larger than the default), however many arrive at once."""
    sizes: list[int] = []

    async def alone(ctx: Context, event: ActionInvocation) -> Response:
        return reply(f"alone {event.action_id}")

    async def batch(pressed: Batch[ActionInvocation]) -> None:
        sizes.append(len(pressed.items))
        for item in pressed.items:
            item.response = reply(f"batched {item.event.action_id}")

    world.core.add_action("probe", alone, batch=batch, max_batch=2)
    presses = [ActionInvocation(origin(f"burst-{n}"), BOB, f"probe:{n}") for n in range(5)]
    answers = await asyncio.gather(*(world.core.handle(p) for p in presses))
    assert [said(a) for a in answers] == [f"batched probe:{n}" for n in range(5)]
    assert sizes == [2, 2, 1]
    batcher = world.core.action_batcher("probe")
    assert batcher is not None and batcher.batches == 3


async def test_actions_forms_shortcuts_and_dms_reach_their_handlers(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.core")
    core = world.core
    asked: list[str] = []

    async def pressed(ctx: Context, event: ActionInvocation) -> Response:
        return reply(f"{event.action_id} {event.value} by {ctx.member.display_name}")

    async def submitted(ctx: Context, event: FormSubmission) -> Response:
        return reply(f"{event.values['name']} by {ctx.member.display_name}")

    async def shortcut(ctx: Context, event: ShortcutInvocation) -> Response:
        return reply(f"on {event.message_text} by {ctx.member.display_name}")

    async def not_mine(ctx: Context, event: DirectMessageReceived) -> Response:
        asked.append(f"first {event.text} {ctx.member.display_name}")
        if event.text == "oops":
            raise UserError("Say it differently.")
        return None

    async def mine(ctx: Context, event: DirectMessageReceived) -> Response:
        asked.append(f"second {event.text}")
        return reply(f"heard {event.text} from {ctx.member.display_name}")

    async def never(ctx: Context, event: DirectMessageReceived) -> Response:
        asked.append("third")
        return reply("too late")

    core.add_action("probe", pressed)
    core.add_form("probe-form", submitted)
    core.add_shortcut(Shortcut("probe-sc", "Probe", "message"), shortcut)
    for handler in (not_mine, mine, never):
        core.add_dm_handler(handler)

    async def answer(event: Any) -> str:
        return said(await core.handle(event))

    assert await answer(ActionInvocation(origin("a-1"), BOB, "probe:7:x", value="v")) == (
        "probe:7:x v by bob"
    )
    assert await answer(FormSubmission(origin("f-1"), BOB, "probe-form", {"name": "n"})) == (
        "n by bob"
    )
    sc = ShortcutInvocation(origin("s-1"), BOB, "probe-sc", message_text="text")
    assert await answer(sc) == "on text by bob"
    assert await answer(DirectMessageReceived(origin("d-1"), BOB, "hi")) == "heard hi from bob"
    assert asked == ["first hi bob", "second hi"]

    assert await answer(ActionInvocation(origin("a-2"), BOB, "gone:1")) == (
        "That button no longer does anything here."
    )
    assert await answer(FormSubmission(origin("f-2"), BOB, "gone-form")) == (
        "That form has expired; run the command again."
    )
    assert await answer(ShortcutInvocation(origin("s-2"), BOB, "gone-sc")) == (
        "That shortcut no longer does anything here."
    )
    assert await answer(DirectMessageReceived(origin("d-2"), BOB, "oops")) == "Say it differently."
    for kind in ("action", "form", "shortcut", "message"):
        assert world.counted(kind, "ok") == 1 and world.counted(kind, "user_error") == 1, kind
    bob = "by U2 in test:W1"
    assert logged(caplog) == [
        f"user error in action gone:1 {bob} (event a-2): That button no longer does anything here.",
        f"user error in form gone-form {bob} (event f-2): That form has expired; run the command "
        "again.",
        f"user error in shortcut gone-sc {bob} (event s-2): That shortcut no longer does anything "
        "here.",
        f"user error in DirectMessageReceived {bob} (event d-2): Say it differently.",
    ]


async def test_a_dm_no_handler_takes_points_to_help(world: World) -> None:
    answer = said(await world.core.handle(DirectMessageReceived(origin("d-1"), BOB, "hi")))
    assert answer == "I only understand commands. Type /syncup help to see them."


async def test_a_form_error_with_fields_keeps_the_form_open_and_one_without_is_a_reply(
    world: World,
) -> None:
    async def submitted(ctx: Context, event: FormSubmission) -> Response:
        if event.values.get("name"):
            raise UserError("Too long.", field="name")
        raise UserError("Nothing to save.")

    world.core.add_form("probe-form", submitted)
    named = FormSubmission(origin("f-1"), BOB, "probe-form", {"name": "x" * 300})
    assert await world.core.handle(named) == FormErrors({"name": "Too long."})
    empty = FormSubmission(origin("f-2"), BOB, "probe-form", {"name": ""})
    assert said(await world.core.handle(empty)) == "Nothing to save."


# -- NUL characters -----------------------------------------------------------------------------


async def test_a_nul_in_each_kind_of_input_is_refused_with_what_to_fix(world: World) -> None:
    core = world.core
    ran: list[str] = []

    async def anything(ctx: Context, event: Any) -> Response:
        ran.append(type(event).__name__)
        return reply("handled")

    core.add_action("probe", anything)
    core.add_form("probe-form", anything)
    core.add_shortcut(Shortcut("probe-sc", "Probe", "message"), anything)
    core.add_dm_handler(anything)

    async def answer(event: Any) -> str:
        return said(await core.handle(event))

    assert await answer(command("/probe post a\x00b")) == NUL_FROM.format(what="command")
    assert await answer(ActionInvocation(origin("a-1"), BOB, "probe:1", value="\x00")) == (
        NUL_FROM.format(what="choice")
    )
    assert await answer(DirectMessageReceived(origin("d-1"), BOB, "a\x00")) == (
        NUL_FROM.format(what="answer")
    )
    state = FormSubmission(origin("f-1"), BOB, "probe-form", {"name": "ok"}, state="\x00")
    assert await answer(state) == NUL_FROM.format(what="form")
    fields = FormSubmission(origin("f-2"), BOB, "probe-form", {"a": "\x00", "b": "ok", "c": "\x00"})
    assert await core.handle(fields) == FormErrors(
        {"a": NUL_FROM.format(what="answer"), "c": NUL_FROM.format(what="answer")}
    )
    sc = ShortcutInvocation(origin("s-1"), BOB, "probe-sc", message_text="\x00")
    assert (
        await answer(sc) == "That message has a NUL character (\\0) in it: syncup can't store it."
    )
    assert ran == [] and await world.rows(ProcessedEvent) == []
    for kind in ("command", "action", "message", "shortcut"):
        assert world.counted(kind, "refused") == 1, kind
    assert world.counted("form", "refused") == 2
    # Without a NUL the same inputs are handled.
    assert await answer(ActionInvocation(origin("a-2"), BOB, "probe:1", value="v")) == "handled"


# -- background work ----------------------------------------------------------------------------


async def test_background_work_is_tracked_until_it_and_what_it_starts_are_done(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    core = world.core
    release = asyncio.Event()
    done: list[str] = []

    async def later() -> None:
        await asyncio.sleep(0)
        done.append("later")

    async def refresh() -> None:
        await release.wait()
        core.spawn(later(), name="later")
        done.append("refresh")

    task = core.spawn(refresh(), name="refresh")
    assert task.get_name() == "refresh"
    await asyncio.sleep(0)
    assert core.busy()
    release.set()
    await core.idle()
    assert done == ["refresh", "later"] and not core.busy()
    stopped = core.spawn(asyncio.sleep(3600), name="stopped")
    await asyncio.sleep(0)
    stopped.cancel()
    await core.idle()
    assert not core.busy()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    # Finished work is let go of: a long-running process does not keep every task it ran.
    gone = weakref.ref(task)
    del task, stopped
    gc.collect()
    assert gone() is None


async def test_failed_background_work_is_one_error_line_naming_the_task_with_its_traceback(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator searching the log for ``background task <name> failed`` finds exactly that
    line, with the traceback of what went wrong."""

    async def broken() -> None:
        raise RuntimeError("a real bug")

    world.core.spawn(broken(), name="refresh")
    await world.core.idle()
    [record] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert (record.name, record.levelno) == ("bot.core", logging.ERROR)
    assert record.getMessage() == "background task refresh failed"
    assert record.exc_info is not None and str(record.exc_info[1]) == "a real bug"


# -- registration mistakes, caught when the app starts ------------------------------------------


def test_registration_mistakes_are_refused_with_what_is_wrong(database: Database) -> None:
    core = Core(database, FakeClock(NOW))

    async def handler(ctx: Context, args: dict[str, Any]) -> Response:
        return None

    with pytest.raises(ValueError, match=re.escape("/probe: no handler for ['crash', 'down']")):
        core.add_command(
            SPEC, {s.name: handler for s in SPEC.subcommands if s.name not in ("crash", "down")}
        )
    assert "probe" not in core.specs
    small = CommandSpec("small", "a command", (SubcommandSpec("one", "the first"),))
    core.add_command(small, {"one": handler})
    with pytest.raises(ValueError, match=re.escape("/small: ['one'] already exist")):
        core.extend_command("small", (SubcommandSpec("one", "again"),), {"one": handler})
    with pytest.raises(ValueError, match=re.escape("/small: no handler for ['two']")):
        core.extend_command("small", (SubcommandSpec("two", "the second"),), {})
    assert [s.name for s in core.specs["small"].subcommands] == ["one"]
    for on in ("message", "user"):
        core.add_shortcut(Shortcut(f"sc-{on}", "Label", on), handler)
    assert [(s.shortcut_id, s.on) for s in core.shortcuts.values()] == [
        ("sc-message", "message"),
        ("sc-user", "user"),
    ]
    with pytest.raises(ValueError, match="shortcut sc-channel: on must be message or user"):
        core.add_shortcut(Shortcut("sc-channel", "Label", "channel"), handler)
    assert "sc-channel" not in core.shortcuts


async def test_an_extended_command_runs_its_new_subcommands_and_lists_them(
    world: World,
) -> None:
    core = world.core

    async def two(ctx: Context, args: dict[str, Any]) -> Response:
        return reply(f"two for {ctx.member.display_name}")

    core.extend_command("probe", (SubcommandSpec("two", "added later"),), {"two": two})
    assert [s.name for s in core.specs["probe"].subcommands][-2:] == ["where", "two"]
    assert core.specs["probe"].description == "test command"
    assert said(await core.handle(command("/probe two"))) == "two for alice"
    assert said(await core.handle(command("/probe post still here"))) == "queued"


async def test_an_event_whose_bookkeeping_fails_is_not_recorded_postgresql_only(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """When the core fails before the handler runs (here: a display name longer than its
    column, which only PostgreSQL refuses), the event is not recorded as handled: the failure
    was syncup's own, so the platform's retry runs it again rather than being dropped."""
    if world.database.dialect != "postgresql":
        pytest.skip("a check only PostgreSQL can make (SQLite does not enforce String lengths)")
    long_named = Actor("U9", "x" * 300)
    event = CommandInvocation(origin("long-1"), long_named, "probe", "quiet")
    first = said(await world.core.handle(event))
    assert first.startswith("Sorry, something went wrong on syncup's side (ref ")
    assert said(await world.core.handle(event)).startswith("Sorry, something went wrong")
    assert await world.rows(ProcessedEvent) == []
    assert world.counted("command", "error") == 2
