"""The console adapter: the bot on a terminal, with a demo workspace and a demo clock.

You act as one member of the demo workspace (``/as NAME``); ``/word ...`` lines are that member's
slash commands in #team, other lines are DMs to the bot, a number presses a button (several numbers
choose several options of a multi-select). Everything the
bot sends goes through the same core, scheduler, outbox and delivery worker as on Slack and
Discord, and :class:`ConsolePort` prints it with its recipient.

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
import sys
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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
from adapters.console.render import (
    PRIVATE_HEADING,
    ChartFiles,
    Control,
    Renderer,
    heading,
    message_number,
)
from bot import directory
from bot.chat import (
    Form,
    FormErrors,
    FormField,
    Message,
    OpenForm,
    Reply,
    Response,
    SelectField,
    TextField,
)
from bot.config import Settings
from bot.events import (
    ActionInvocation,
    Actor,
    CommandInvocation,
    DirectMessageReceived,
    FormSubmission,
    InboundEvent,
    Origin,
)
from bot.port import (
    ChannelInfo,
    Delivery,
    MemberInfo,
    Method,
    PermanentDeliveryError,
    PlatformPort,
    RateLimit,
    Receipt,
    Target,
)
from storage.models import Member, Workspace

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

PLATFORM = "console"
WORKSPACE_ID = "demo"
WORKSPACE_NAME = "Demo team"
CHANNEL_ID = "team"
CHANNEL_NAME = "team"
DM_PREFIX = "dm-"
# The console has no platform limits; pacing it would only slow the demo down.
UNLIMITED = RateLimit(rate=1000.0, burst=1000)
AUTOFLUSH_SECONDS = 0.1


@dataclass(frozen=True)
class DemoMember:
    user_id: str
    timezone: str
    is_admin: bool = False

    def actor(self) -> Actor:
        return Actor(self.user_id, self.user_id, self.timezone, self.is_admin)


DEMO_MEMBERS: tuple[DemoMember, ...] = (
    DemoMember("alice", "Europe/Berlin", is_admin=True),
    DemoMember("bob", "America/New_York"),
    DemoMember("chandra", "Asia/Kolkata"),
    DemoMember("dana", "America/Los_Angeles"),
)
MEMBERS_BY_ID: Mapping[str, DemoMember] = {m.user_id: m for m in DEMO_MEMBERS}
MEMBER_LIST = ", ".join(m.user_id for m in DEMO_MEMBERS)


@dataclass(frozen=True)
class DemoChannel:
    channel_id: str
    name: str
    members: tuple[str, ...]
    # Whether syncup is in the channel: it may post only there. A channel it is not in shows,
    # on the console, what Slack and Discord answer when a report channel is one of those.
    bot_is_in: bool = True

    def info(self) -> ChannelInfo:
        if self.bot_is_in:
            return ChannelInfo(self.channel_id, self.name)
        return ChannelInfo(
            self.channel_id,
            self.name,
            can_post=False,
            reason=(
                f"I can't post in #{self.name}: invite @syncup to it first (/invite @syncup), "
                f"or choose a channel I am in, like #{CHANNEL_NAME}."
            ),
        )


RANDOM_CHANNEL_ID = "random"
DEMO_CHANNELS: tuple[DemoChannel, ...] = (
    DemoChannel(CHANNEL_ID, CHANNEL_NAME, tuple(m.user_id for m in DEMO_MEMBERS)),
    # Not seeded: syncup learns it from the directory when a form names it, and cannot post.
    DemoChannel(RANDOM_CHANNEL_ID, "random", ("alice", "bob", "chandra"), bot_is_in=False),
)
CHANNELS_BY_ID: Mapping[str, DemoChannel] = {c.channel_id: c for c in DEMO_CHANNELS}


def dm_channel(user_id: str) -> str:
    return DM_PREFIX + user_id


def dm_user(channel_id: str | None) -> str | None:
    if channel_id and channel_id.startswith(DM_PREFIX):
        return channel_id[len(DM_PREFIX) :]
    return None


CONSOLE_HELP = f"""\
Console commands:
  /as NAME        act as another member ({MEMBER_LIST})
  /members        the demo members (time zones, local times) and channels
  /clock          the demo clock and what is scheduled next
  /clock +30m     move the demo clock forward (also +2h, +1d, 09:00, 2026-03-08 09:00);
                  scheduled work on the way happens, in order
  N or /press N   press button N of a message you can see
  N M ...         choose options N, M... of a multi-select together
  /cancel         close a form while filling it in
  /quit           leave
Any other /command goes to the bot: /syncup help lists them.
A line that is not a command is a DM from you to the bot."""


# -- output -------------------------------------------------------------------------------------


class Terminal:
    """Where the console writes. In interactive mode it keeps the prompt intact when the bot
    speaks while you type; in script mode it echoes every input line after its prompt."""

    def __init__(self, out: TextIO, *, interactive: bool) -> None:
        self.out = out
        self.interactive = interactive
        self._prompt: str | None = None
        self._preface: str | None = None

    def show(self, lines: Iterable[str]) -> None:
        lines = list(lines)
        if self._preface is not None:
            lines.insert(0, self._preface)
            self._preface = None
        if self._prompt is not None:
            self.out.write("\n")
        for line in lines:
            self.out.write(line + "\n")
        if self._prompt is not None:
            self.out.write(self._prompt)
        self.out.flush()

    def say(self, *lines: str) -> None:
        self.show(lines)

    def preface(self, line: str | None) -> None:
        """A line to print before the next output, if any comes (a demo-clock time stamp)."""
        self._preface = line

    def prompt(self, text: str) -> None:
        if self.interactive:
            self._prompt = text
            self.out.write(text)
            self.out.flush()

    def skipped(self) -> None:
        """A blank line where a command was expected: ask again, echo nothing."""
        self._prompt = None

    def answered(self, prompt: str, line: str | None) -> None:
        """The prompt got ``line`` (None: input ended); a script's input is echoed."""
        self._prompt = None
        if line is None:
            if self.interactive:
                self.out.write("\n")
        elif not self.interactive:
            self.out.write(f"{prompt}{line}".rstrip() + "\n")
        self.out.flush()


@dataclass(frozen=True)
class Pressable:
    control: Control
    channel_id: str | None
    message_id: str | None
    # The only member who sees the message (a DM or an ephemeral one); None for channel posts.
    visible_to: str | None


class Screen:
    """Prints messages with their recipient and keeps the numbered buttons they carry; writes
    the pictures of charts into ``charts_dir``."""

    def __init__(self, terminal: Terminal, charts_dir: str | None = None) -> None:
        self.terminal = terminal
        self.renderer = Renderer(
            {m.user_id: m.user_id for m in DEMO_MEMBERS},
            {c.channel_id: c.name for c in DEMO_CHANNELS},
            ChartFiles(charts_dir) if charts_dir else None,
        )
        self.controls: dict[int, Pressable] = {}
        self._next_control = 1

    def where(self, channel_id: str | None) -> str:
        user = dm_user(channel_id)
        if user is not None:
            return f"DM to {self.renderer.user(user)}"
        return self.renderer.channel(channel_id or CHANNEL_ID)

    def show(
        self,
        title: str,
        msg: Message,
        *,
        channel_id: str | None,
        message_id: str | None,
        visible_to: str | None,
        replaces: str | None = None,
    ) -> None:
        if replaces is not None:
            self.controls = {n: p for n, p in self.controls.items() if p.message_id != replaces}
        rendered = self.renderer.message(msg, self._next_control)
        self._next_control += len(rendered.controls)
        for control in rendered.controls:
            self.controls[control.number] = Pressable(control, channel_id, message_id, visible_to)
        self.terminal.show([title, *rendered.lines])


@dataclass(frozen=True)
class _Delivered:
    """A delivery accepted by the port, waiting to be printed."""

    outbox_id: int
    method: Method
    target: Target
    message: Message
    channel_id: str
    message_id: str | None


class ConsolePort:
    """Delivers outbox rows by printing them with their recipient.

    The worker sends rows of different (workspace, method) buckets concurrently, so the port
    does not print in ``deliver``: it accepts the row, answers with a receipt at once (message id
    ``m<outbox id>``) and prints on :meth:`flush`, in outbox order, which is the order the core
    queued them in. The console flushes each time the app has settled, so a transcript is the
    same on every run, and messages are numbered ``#1``, ``#2``... in the order they are shown.

    It is also the demo workspace's :class:`~bot.port.PlatformDirectory`: members and channels
    come from the demo data, and ``#random`` is a channel syncup is not in (it cannot post there).
    """

    platform = PLATFORM

    def __init__(self, screen: Screen, acting: ActingMember) -> None:
        self.screen = screen
        self.acting = acting
        self._sent: dict[str, Receipt] = {}
        self._channel_of: dict[str, str] = {}
        self._waiting: list[_Delivered] = []
        self._numbers: dict[str, int] = {}

    def rate_limits(self) -> Mapping[Method, RateLimit]:
        return {method: UNLIMITED for method in Method}

    def channel_rate_limit(self) -> RateLimit | None:
        return None

    # -- the directory (PlatformDirectory) over the demo data ---------------------------------

    async def member_info(
        self, workspace_id: str, *, user_id: str | None = None, name: str | None = None
    ) -> MemberInfo | None:
        wanted = user_id or (name or "").lower().removeprefix("@")
        demo = MEMBERS_BY_ID.get(wanted) if workspace_id == WORKSPACE_ID else None
        return None if demo is None else MemberInfo(demo.user_id, demo.user_id, demo.timezone)

    async def channel_info(
        self, workspace_id: str, *, channel_id: str | None = None, name: str | None = None
    ) -> ChannelInfo | None:
        if workspace_id != WORKSPACE_ID:
            return None
        wanted = (name or "").lower().removeprefix("#")
        for channel in DEMO_CHANNELS:
            if channel.channel_id == channel_id or (wanted and channel.name == wanted):
                return channel.info()
        return None

    async def channel_members(self, workspace_id: str, channel_id: str) -> list[MemberInfo]:
        channel = CHANNELS_BY_ID.get(channel_id) if workspace_id == WORKSPACE_ID else None
        if channel is None:
            return []
        return [
            MemberInfo(user_id, user_id, MEMBERS_BY_ID[user_id].timezone)
            for user_id in channel.members
        ]

    # -- delivery -------------------------------------------------------------------------------

    async def deliver(self, delivery: Delivery) -> Receipt:
        # A row accepted before (a retry after a lost outcome) is never printed twice.
        earlier = self._sent.get(delivery.idempotency_key)
        if earlier is not None:
            return earlier
        target = delivery.target
        message_id: str | None = f"m{delivery.outbox_id}"
        if delivery.method is Method.DM:
            user = target.user_id or dm_user(target.dm_channel_id)
            if user is None:
                raise PermanentDeliveryError("a DM needs the member's user id")
            if user not in MEMBERS_BY_ID:
                raise PermanentDeliveryError(f"no console member with id {user!r}")
            channel = target.dm_channel_id or dm_channel(user)
        elif delivery.method is Method.POST:
            channel = target.channel_id or target.dm_channel_id or ""
            if not channel:
                raise PermanentDeliveryError("a post needs a channel id")
        elif delivery.method is Method.UPDATE:
            message_id = target.message_id
            known = self._channel_of.get(message_id or "")
            if message_id is None or known is None:
                raise PermanentDeliveryError(f"update of {message_id}, never sent here")
            channel = target.channel_id or known
        else:
            if not target.user_id:
                raise PermanentDeliveryError("an ephemeral message needs the member's user id")
            channel = target.channel_id or dm_channel(target.user_id)
            message_id = None
        self._waiting.append(
            _Delivered(
                delivery.outbox_id,
                delivery.method,
                target,
                delivery.message,
                channel,
                message_id,
            )
        )
        receipt = Receipt(channel_id=channel, message_id=message_id)
        self._sent[delivery.idempotency_key] = receipt
        if message_id is not None:
            self._channel_of[message_id] = channel
        return receipt

    def waiting(self) -> bool:
        return bool(self._waiting)

    def flush(self) -> None:
        """Print every accepted delivery, in outbox order."""
        waiting, self._waiting = sorted(self._waiting, key=lambda d: d.outbox_id), []
        for delivered in waiting:
            self._show(delivered)

    def _number(self, message_id: str | None) -> str:
        number = self._numbers.get(message_id or "")
        return str(number) if number is not None else message_number(message_id)

    def _show(self, delivered: _Delivered) -> None:
        target = delivered.target
        where = self.screen.where(delivered.channel_id)
        replaces: str | None = None
        visible_to = dm_user(delivered.channel_id)
        if delivered.method is Method.UPDATE:
            title = heading(f"update of #{self._number(delivered.message_id)} in {where}")
            replaces = delivered.message_id
        elif delivered.method is Method.EPHEMERAL:
            user = target.user_id or ""
            who = "you" if user == self.acting.user_id else self.screen.renderer.user(user)
            title = heading(where, note=f" (only {who} can see this)")
            visible_to = user
        else:
            number = len(self._numbers) + 1
            self._numbers[delivered.message_id or ""] = number
            note = f" (thread of #{self._number(target.thread_of)})" if target.thread_of else ""
            title = heading(where, number=str(number), note=note)
        self.screen.show(
            title,
            delivered.message,
            channel_id=delivered.channel_id,
            message_id=delivered.message_id,
            visible_to=visible_to,
            replaces=replaces,
        )


class ActingMember:
    """Who is at the keyboard; ``/as`` changes it."""

    def __init__(self, member: DemoMember) -> None:
        self.member = member

    @property
    def user_id(self) -> str:
        return self.member.user_id


# -- the adapter ------------------------------------------------------------------------------


class _Cancelled(Exception):
    """The form was closed (``/cancel``) or input ended while filling it in."""


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
        self._lines = list(lines) if lines is not None else None
        if interactive is None:
            interactive = self._lines is None and sys.stdin.isatty()
        self.interactive = interactive
        self.terminal = Terminal(out if out is not None else sys.stdout, interactive=interactive)
        self.screen = Screen(self.terminal, settings.console.charts_dir)
        self.acting = ActingMember(first)
        self.console_port = ConsolePort(self.screen, self.acting)
        self.port: PlatformPort = self.console_port
        self.settle_timeout = settle_timeout
        self._queue: asyncio.Queue[str | None] | None = None
        self._eof = False
        self._events = itertools.count(1)
        self._app: App | None = None

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
        await self._seed()
        self._start_input()
        flusher: asyncio.Task[None] | None = None
        if self.interactive:
            self._quiet_routine_logs()
            await self._banner()
            flusher = asyncio.create_task(self._flush_when_settled(), name="console-output")
        try:
            while True:
                line = await self._read(f"{self.acting.user_id}> ", blank=False)
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

    def _start_input(self) -> None:
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._queue = queue
        if self._lines is not None:
            for line in self._lines:
                queue.put_nowait(line)
            queue.put_nowait(None)
            return
        loop = asyncio.get_running_loop()

        def feed(item: str | None) -> bool:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop has closed: the console is gone
                return False
            return True

        def read_stdin() -> None:
            try:
                for line in sys.stdin:
                    if not feed(line):
                        return
            except (OSError, ValueError) as exc:
                log.debug("stdin closed: %s", exc)
            feed(None)

        # A daemon thread, not the loop's executor: a read blocked on a terminal must not keep
        # the process alive after /quit.
        threading.Thread(target=read_stdin, name="console-stdin", daemon=True).start()

    async def _read(self, prompt: str, *, blank: bool) -> str | None:
        """The next input line (None at the end of input); blank lines are skipped unless
        ``blank``. In script mode the line is echoed after ``prompt``."""
        assert self._queue is not None
        while not self._eof:
            self.terminal.prompt(prompt)
            item = await self._queue.get()
            if item is None:
                self._eof = True
                self.terminal.answered(prompt, None)
                return None
            line = item.rstrip("\r\n")
            if not line.strip() and not blank:
                self.terminal.skipped()
                continue
            self.terminal.answered(prompt, line)
            return line
        return None

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
        if _numbers(line) is not None:
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

    async def _press(self, arg: str) -> None:
        numbers = _numbers(arg)
        if numbers is None:
            self.terminal.say(
                "Usage: /press N (or just N), where N is a button's number; several numbers "
                "(N M ...) choose several options of a multi-select."
            )
            return
        pressed: list[Pressable] = []
        for number in numbers:
            pressable = self.screen.controls.get(number)
            if pressable is None:
                self.terminal.say(f"There is no button [{number}] to press.")
                return
            owner = pressable.visible_to
            if owner is not None and owner != self.acting.user_id:
                self.terminal.say(
                    f"Button [{number}] is on a message only @{owner} can see; "
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
                    "Several numbers choose options of one multi-select menu together; "
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
        """Prompt field by field, submit, re-prompt fields in error, follow-up forms too."""
        values: dict[str, str | list[str]] = {}
        todo: list[FormField] = list(form.fields)
        errors: dict[str, str] = {}
        self.terminal.say(self.screen.renderer.form_title(form))
        while True:
            try:
                for form_field in todo:
                    if form_field.name in errors:
                        self.terminal.say(f"  ! {errors[form_field.name]}")
                    values[form_field.name] = await self._ask(form_field)
            except _Cancelled:
                self.terminal.say("Form closed; nothing was submitted.")
                return
            origin = self._origin(source.origin.channel_id)
            submission = FormSubmission(
                origin, source.actor, form.form_id, dict(values), form.state
            )
            response = await self.app.core.handle(submission)
            if isinstance(response, FormErrors):
                names = {f.name for f in form.fields}
                errors = dict(response.errors)
                elsewhere = [m for name, m in errors.items() if name not in names]
                if elsewhere:
                    self.terminal.say(*(f"  ! {message}" for message in elsewhere))
                todo = [f for f in form.fields if f.name in errors] or list(form.fields)
                continue
            if isinstance(response, OpenForm):
                form = response.form
                values, errors, todo = {}, {}, list(form.fields)
                self.terminal.say(self.screen.renderer.form_title(form))
                continue
            if response is None:
                self.terminal.say("Submitted.")
            else:
                self._private(submission, response.message)
            return

    async def _ask(self, form_field: FormField) -> str | list[str]:
        renderer = self.screen.renderer
        prompt = renderer.field_prompt(form_field)
        if isinstance(form_field, SelectField):
            self.terminal.say(*renderer.field_options(form_field))
        while True:
            line = await self._read(prompt, blank=True)
            if line is None or line.strip().lower() == "/cancel":
                raise _Cancelled
            answer = line.strip()
            if not answer:
                kept = _initial(form_field)
                if kept is not None:
                    return kept
                if not form_field.required:
                    return [] if isinstance(form_field, SelectField) and form_field.multiple else ""
                self.terminal.say("  This field is required; answer it, or type /cancel.")
                continue
            if isinstance(form_field, TextField):
                if len(answer) > form_field.max_length:
                    self.terminal.say(
                        f"  At most {form_field.max_length} characters, please "
                        f"({len(answer)} given)."
                    )
                    continue
                return answer
            try:
                return _choose(form_field, answer)
            except _BadChoice as exc:
                self.terminal.say(f"  {exc}")

    # -- console commands --------------------------------------------------------------------

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
            upcoming = self.app.scheduler.next_runs()[:5]
            if upcoming:
                lines.append("Next scheduled:")
                lines.extend(f"  {key} at {describe(when, zone)}" for key, when in upcoming)
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


def _initial(form_field: FormField) -> str | list[str] | None:
    if isinstance(form_field, TextField):
        return form_field.initial or None
    if not form_field.initial:
        return None
    return list(form_field.initial) if form_field.multiple else form_field.initial[0]


class _BadChoice(Exception):
    pass


def _numbers(line: str) -> list[int] | None:
    """``3``, ``3 5`` or ``3, 5``: the numbers pressed; None when the line is anything else."""
    tokens = line.replace(",", " ").split()
    if not tokens or not all(token.isdigit() for token in tokens):
        return None
    return [int(token) for token in tokens]


def _choose(form_field: SelectField, answer: str) -> str | list[str]:
    """The chosen value(s), by number or by label."""
    options = form_field.options
    for choice in options:  # a whole label first: labels may contain spaces
        if answer.lower() in (choice.label.lower(), choice.value.lower()):
            return [choice.value] if form_field.multiple else choice.value
    picked: list[str] = []
    for token in answer.replace(",", " ").split():
        if token.isdigit() and 1 <= int(token) <= len(options):
            value = options[int(token) - 1].value
        else:
            wanted = token.lower()
            match = [c.value for c in options if wanted in (c.label.lower(), c.value.lower())]
            if not match:
                raise _BadChoice(
                    f'"{token}" is not one of the options; type a number from 1 to {len(options)}.'
                )
            value = match[0]
        if value not in picked:
            picked.append(value)
    if form_field.multiple:
        return picked
    if len(picked) != 1:
        raise _BadChoice(f"Choose one option: a number from 1 to {len(options)}.")
    return picked[0]


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
