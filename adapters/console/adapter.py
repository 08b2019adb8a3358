"""The console adapter: the bot on a terminal, with a demo workspace and a demo clock.

You act as one member of the demo workspace (``/as NAME``); ``/word ...`` lines are that member's
slash commands in #team, other lines are DMs to the bot (a number too: it answers a question),
a label such as ``b2`` presses a button (several labels choose several options of a
multi-select), ``/shortcut NAME #5`` runs a shortcut on a message (:mod:`.shortcuts`).
Everything the bot sends goes through the same core, scheduler, outbox and delivery worker as
on Slack and Discord, and :class:`ConsolePort` prints it with its recipient.

When stdin is not a terminal the console runs as a script: no banner and no prompt, each input
line echoed after ``alice> `` so the output reads as a transcript, and after every line it waits
until the app has settled, so the output is deterministic. At the end of input it waits once more
and exits with code 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import sys
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import select

from adapters.console.clock import (
    ClockError,
    DemoClock,
    describe,
    move_clock,
    parse_target,
    settle,
)
from adapters.console.config_check import check_console
from adapters.console.demo import (
    CHANNEL_ID,
    CHANNEL_NAME,
    DEMO_CHANNELS,
    DEMO_MEMBERS,
    MEMBER_LIST,
    MEMBERS_BY_ID,
    PLATFORM,
    WORKSPACE_ID,
    WORKSPACE_NAME,
    ActingMember,
    dm_channel,
    dm_user,
)
from adapters.console.forms import FormClosed, FormFiller, Values
from adapters.console.input_lines import LineReader
from adapters.console.port import ConsolePort
from adapters.console.render import PRIVATE_HEADING, heading
from adapters.console.screen import Pressable, Screen
from adapters.console.shortcuts import ConsoleShortcuts
from adapters.console.terminal import Terminal
from adapters.console.upcoming import in_words
from bot import directory
from bot.chat import Form, FormErrors, Message, OpenForm, Reply, Response
from bot.config import Settings
from bot.events import (
    ActionInvocation,
    Actor,
    CommandInvocation,
    DirectMessageReceived,
    FormSubmission,
    InboundEvent,
    Origin,
    ShortcutInvocation,
)
from bot.port import PlatformPort
from storage.models import Member, Workspace

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

AUTOFLUSH_SECONDS = 0.1

CONSOLE_HELP = f"""\
Console commands:
  /as NAME        act as another member ({MEMBER_LIST})
  /members        the demo members (time zones, local times) and channels
  /clock          the demo clock and what is scheduled next, in words
  /clock +30m     move the demo clock forward (also +2h, +1d, 09:00, 2026-03-08 09:00);
                  scheduled work on the way happens, in order
  b2 or /press b2 press the button labelled [b2] on a message you can see
                  (each message's buttons have its letter: a1, a2, then b1...)
  b3 b5           choose options b3 and b5 of a multi-select together
  /cancel         close a form while filling it in (other commands wait until it is done)
  /say TEXT       post TEXT in #team as yourself (a message to run a shortcut on)
  /shortcut       list the shortcuts (what Slack's message menu and Discord's Apps menu
                  offer); /shortcut NAME #5 runs one on message #5 on screen,
                  /shortcut NAME @bob on a member
  /quit           leave
Any other /command goes to the bot: /syncup help lists them.
A line that is not a command is a DM from you to the bot; so is a number (3 answers a
question, it never presses a button).
Several lines in one answer or DM: end each line but the last with \\, or type \"\"\" on a
line before them and after them."""


# The console's own commands (the bot's are in the core's specs).
CONSOLE_COMMANDS = frozenset(
    {"as", "members", "clock", "press", "say", "shortcut", "help", "quit", "exit"}
)


class ConsoleAdapter:
    """Reads lines (stdin, or ``lines`` in tests), hands events to the core, prints replies."""

    def __init__(
        self,
        settings: Settings,
        *,
        lines: Iterable[str] | None = None,
        out: TextIO | None = None,
        interactive: bool | None = None,
        settle_timeout: float = 60.0,
    ) -> None:
        checked = check_console(settings, {k: m.timezone for k, m in MEMBERS_BY_ID.items()})
        first = MEMBERS_BY_ID[checked.member]
        self._clock = DemoClock(checked.start)
        if interactive is None:
            interactive = lines is None and sys.stdin.isatty()
        self.interactive = interactive
        self.terminal = Terminal(out if out is not None else sys.stdout, interactive=interactive)
        self.screen = Screen(self.terminal, settings.console.charts_dir)
        self.acting = ActingMember(first)
        self.console_port = ConsolePort(self.screen, self.acting)
        self.port: PlatformPort = self.console_port
        self.settle_timeout = settle_timeout
        self.reader = LineReader(self.terminal, lines)
        self.forms = FormFiller(
            self.reader, self.terminal, self.screen.renderer, lambda: self._commands
        )
        self._events = itertools.count(1)
        self._app: App | None = None
        self._commands: frozenset[str] = CONSOLE_COMMANDS
        self.shortcuts = ConsoleShortcuts(self)

    def clock(self) -> DemoClock:
        return self._clock

    @property
    def app(self) -> App:
        if self._app is None:
            raise RuntimeError("the console is not running")
        return self._app

    # -- running ----------------------------------------------------------------------------

    async def run(self, app: App) -> int:
        self._app = app
        self._commands = CONSOLE_COMMANDS | set(app.core.specs)
        await self._seed()
        self.reader.start()
        flusher: asyncio.Task[None] | None = None
        if self.interactive:
            self._quiet_routine_logs()
            await self._banner()
            flusher = asyncio.create_task(self._flush_when_settled(), name="console-output")
        try:
            while True:
                line = await self.reader.read(f"{self.acting.user_id}> ", blank=False)
                if line is None:
                    break
                if await self._line(line):
                    break
                await self._settle()
            await self._settle()
        finally:
            if flusher is not None:
                flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flusher
        return 0

    async def _settle(self) -> None:
        """Wait until the app has settled, then print what was delivered meanwhile."""
        await settle(self.app, self.settle_timeout)
        self.console_port.flush()

    async def _flush_when_settled(self) -> None:
        """Interactive mode: print what scheduled work sends while nobody types."""
        while True:
            await asyncio.sleep(AUTOFLUSH_SECONDS)
            try:
                if self.console_port.waiting() and await self.app.settled():
                    self.console_port.flush()
            except Exception:
                log.exception("console: printing deliveries failed")

    @staticmethod
    def _quiet_routine_logs() -> None:
        """On a terminal, stderr shares the screen with the conversation: keep INFO chatter
        (the scheduler books jobs every minute) off it unless the operator asked for DEBUG."""
        root = logging.getLogger()
        if sys.stderr.isatty() and logging.DEBUG < root.getEffectiveLevel() < logging.WARNING:
            root.setLevel(logging.WARNING)

    async def _seed(self) -> None:
        """The demo workspace, its members (with DM channels) and #team, in one transaction."""
        now = self._clock.now()
        async with self.app.db.transaction() as session:
            workspace = await directory.ensure_workspace(
                session, PLATFORM, WORKSPACE_ID, WORKSPACE_NAME, now
            )
            members = []
            for demo in DEMO_MEMBERS:
                member = await directory.ensure_member(session, workspace, demo.actor(), now)
                if not member.dm_channel_id:
                    member.dm_channel_id = dm_channel(demo.user_id)
                members.append(member)
            channel = await directory.ensure_channel(
                session, workspace, CHANNEL_ID, CHANNEL_NAME, now
            )
            await directory.add_channel_members(session, channel, members)
        await self.app.scheduler.reconcile()

    async def _banner(self) -> None:
        zone = await self._zone_of(self.acting.user_id)
        self.terminal.say(
            f'syncup console: the demo workspace "{WORKSPACE_NAME}" with #{CHANNEL_NAME} and '
            f"members {MEMBER_LIST}.",
            f"You are @{self.acting.user_id} ({zone.key}). "
            f"Demo clock: {describe(self._clock.now(), zone)}.",
            "Type /help for console commands, /syncup help for the bot's, /quit to leave.",
        )

    # -- one line ---------------------------------------------------------------------------

    async def _line(self, line: str) -> bool:
        """Handle one input line; True to quit."""
        line = line.strip()
        if _labels(line) is not None:
            await self._press(line)
            return False
        if not line.startswith("/"):
            await self._dm(line)
            return False
        word, _, rest = line[1:].partition(" ")
        word, rest = word.lower(), rest.strip()
        if word in ("quit", "exit"):
            return True
        if word in ("help", ""):
            self.terminal.say(CONSOLE_HELP)
        elif word == "as":
            await self._switch(rest)
        elif word == "members":
            await self._members()
        elif word == "clock":
            await self._move_clock(rest)
        elif word == "press":
            await self._press(rest)
        elif word == "say":
            self.shortcuts.say(rest)
        elif word == "shortcut":
            await self.shortcuts.run(rest)
        elif word == "cancel":
            self.terminal.say("No form is open; nothing to cancel.")
        else:
            origin = self._origin(CHANNEL_ID)
            await self._handle(CommandInvocation(origin, self._actor(), word, rest))
        return False

    def _actor(self) -> Actor:
        return self.acting.member.actor()

    def _origin(self, channel_id: str | None) -> Origin:
        event_id = f"console-{next(self._events)}-{uuid.uuid4().hex}"
        name = CHANNEL_NAME if channel_id == CHANNEL_ID else ""
        return Origin(PLATFORM, WORKSPACE_ID, event_id, WORKSPACE_NAME, channel_id, name)

    async def _dm(self, line: str) -> None:
        channel = dm_channel(self.acting.user_id)
        event = DirectMessageReceived(self._origin(channel), self._actor(), line, channel)
        await self._handle(event)

    async def shortcut(self, shortcut_id: str, channel_id: str, **about: str | None) -> None:
        """Run a shortcut as the acting member (``about``: the message or the member)."""
        event = ShortcutInvocation(self._origin(channel_id), self._actor(), shortcut_id, **about)
        await self._handle(event)

    async def _press(self, arg: str) -> None:
        labels = _labels(arg)
        if labels is None:
            self.terminal.say(
                "Usage: /press b2 (or just b2), where b2 is the label of a button, as shown "
                "in brackets; several labels (b3 b5) choose several options of a multi-select."
            )
            return
        pressed: list[Pressable] = []
        for label in labels:
            pressable = self.screen.controls.get(label)
            if pressable is None:
                self.terminal.say(f"There is no button [{label}] to press.")
                return
            owner = pressable.visible_to
            if owner is not None and owner != self.acting.user_id:
                self.terminal.say(
                    f"Button [{label}] is on a message only @{owner} can see; "
                    f"type /as {owner} first."
                )
                return
            if pressable not in pressed:
                pressed.append(pressable)
        first = pressed[0]
        control = first.control
        values = control.values
        if len(pressed) > 1:
            menu = (first.message_id, control.menu)
            if control.max_selected < 2 or any(
                (p.message_id, p.control.menu) != menu for p in pressed
            ):
                self.terminal.say(
                    "Several labels choose options of one multi-select menu together; "
                    "press buttons one at a time."
                )
                return
            if len(pressed) > control.max_selected:
                self.terminal.say(
                    f"Choose at most {control.max_selected} of these options "
                    f"({len(pressed)} given)."
                )
                return
            ordered = sorted(pressed, key=lambda p: p.control.number)
            values = tuple(p.control.value for p in ordered)
        event = ActionInvocation(
            self._origin(first.channel_id),
            self._actor(),
            control.action_id,
            values[0] if values else control.value,
            values,
            first.channel_id,
            first.message_id,
        )
        await self._handle(event)

    async def _handle(self, event: InboundEvent) -> None:
        response = await self.app.core.handle(event)
        await self._respond(event, response)

    async def _respond(self, event: InboundEvent, response: Response) -> None:
        if isinstance(response, Reply):
            self._private(event, response.message)
        elif isinstance(response, OpenForm):
            await self._fill(event, response.form)
        elif isinstance(response, FormErrors):
            self.terminal.say(*(f"  ! {message}" for message in response.errors.values()))

    def _private(self, event: InboundEvent, msg: Message) -> None:
        """A reply only the acting member sees: in their DM, or ephemeral in the channel."""
        channel = event.origin.channel_id
        if dm_user(channel) is not None:
            title = heading(self.screen.where(channel))
        else:
            title = PRIVATE_HEADING
        self.screen.show(
            title, msg, channel_id=channel, message_id=None, visible_to=event.actor.user_id
        )

    # -- forms -----------------------------------------------------------------------------

    async def _fill(self, source: InboundEvent, form: Form) -> None:
        async def submit(current: Form, values: Values) -> Response:
            origin = self._origin(source.origin.channel_id)
            event = FormSubmission(origin, source.actor, current.form_id, values, current.state)
            return await self.app.core.handle(event)

        try:
            response = await self.forms.fill(form, submit)
        except FormClosed:
            self.terminal.say("Form closed; nothing was submitted.")
            return
        if response is None:
            self.terminal.say("Submitted.")
        elif isinstance(response, Reply):
            self._private(source, response.message)

    # -- console commands ----------------------------------------------------------------------

    async def _switch(self, arg: str) -> None:
        name = arg.strip().lower().removeprefix("@")
        demo = MEMBERS_BY_ID.get(name)
        if demo is None:
            problem = f'No member named "{arg}". ' if arg else ""
            self.terminal.say(f"{problem}Usage: /as NAME, one of {MEMBER_LIST}.")
            return
        self.acting.member = demo
        zone = await self._zone_of(demo.user_id)
        self.terminal.say(f"You are now @{demo.user_id} ({zone.key}).")

    async def _members(self) -> None:
        now = self._clock.now()
        zones = await self._zones()
        lines = [f"Members of {WORKSPACE_NAME} (channel #{CHANNEL_NAME}):"]
        for demo in DEMO_MEMBERS:
            zone = zones.get(demo.user_id) or demo.timezone
            local = now.astimezone(ZoneInfo(zone))
            notes = []
            if demo.is_admin:
                notes.append("workspace admin")
            if demo.user_id == self.acting.user_id:
                notes.append("you")
            note = f"  ({', '.join(notes)})" if notes else ""
            lines.append(f"  @{demo.user_id:<8} {zone:<20} {local:%a %H:%M}{note}")
        channels = [
            f"#{c.name}" if c.bot_is_in else f"#{c.name} (syncup is not in it)"
            for c in DEMO_CHANNELS
        ]
        lines.append(f"Channels: {', '.join(channels)}")
        self.terminal.say(*lines)

    async def _move_clock(self, arg: str) -> None:
        zone = await self._zone_of(self.acting.user_id)
        now = self._clock.now()
        if not arg:
            lines = [f"Demo clock: {describe(now, zone)} ({now:%H:%M} UTC)."]
            upcoming = _first(self.app.scheduler.next_runs(), 5)
            if upcoming:
                lines.append("Next scheduled:")
                async with self.app.db.transaction() as session:
                    for key, when in upcoming:
                        words = await in_words(session, key)
                        lines.append(f"  {describe(when, zone)}: {words}")
            self.terminal.say(*lines)
            return
        try:
            target = parse_target(arg, now, zone)
        except ClockError as exc:
            self.terminal.say(exc.message)
            return
        self.terminal.say(f"Demo clock moves to {describe(target, zone)} ({_span(target - now)}).")

        def stamp(when: datetime) -> None:
            # Output on the way is stamped with its time; at the target, the line above says it.
            self.terminal.preface(f"[{describe(when, zone)}]" if when < target else None)

        try:
            await move_clock(self.app, self._clock, target, on_step=stamp, settled=self._settle)
        finally:
            self.terminal.preface(None)

    async def _zone_of(self, user_id: str) -> ZoneInfo:
        zone = (await self._zones()).get(user_id) or MEMBERS_BY_ID[user_id].timezone
        return ZoneInfo(zone)

    async def _zones(self) -> dict[str, str | None]:
        """Each demo member's zone as stored (a member may have set their own)."""
        async with self.app.db.transaction() as session:
            rows = await session.execute(
                select(Member.platform_user_id, Member.timezone)
                .join(Workspace, Workspace.id == Member.workspace_id)
                .where(Workspace.platform == PLATFORM, Workspace.external_id == WORKSPACE_ID)
            )
            return {user_id: zone for user_id, zone in rows}


_LABEL = re.compile(r"[a-z]+[0-9]+")


def _labels(line: str) -> list[str] | None:
    """``b3``, ``b3 b5`` or ``b3, b5``: the labels of the buttons pressed; None when the line is
    anything else (a number alone is an answer, never a button)."""
    tokens = line.lower().replace(",", " ").split()
    if not tokens or not all(_LABEL.fullmatch(token) for token in tokens):
        return None
    return tokens


def _span(delta: timedelta) -> str:
    """``+1d 2h``, ``+30m``."""
    minutes = round(delta.total_seconds() / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if hours:
        parts.append(f"{hours}h")
    if mins or not parts:
        parts.append(f"{mins}m")
    return "+" + " ".join(parts)


def _first(runs: list[tuple[str, datetime]], count: int) -> list[tuple[str, datetime]]:
    """The first ``count`` runs, and those due at the same time as the last of them (a cut
    between two things that happen at once would hide one of them by chance)."""
    if len(runs) <= count:
        return runs
    last = runs[count - 1][1]
    return runs[:count] + [run for run in runs[count:] if run[1] == last]
