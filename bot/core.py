"""The dispatcher: one inbound event in, one transaction, at most one private response out.

Order of work for every event (invariants 3 and 8):
1. record the platform's event id; a duplicate stops here with no effect;
2. bring the workspace and member up to date;
3. route to the handler; a :class:`UserError` rolls the event's transaction back and becomes a
   private reply that says what to fix; any other error is logged with context and answered
   with a short apology and a reference, never a stack trace; either way the event id is then
   recorded on its own, so a retry is still a duplicate;
4. commit, then wake the delivery worker and the scheduler if the handler asked for it, and run
   what the handler asked to run after commit (:meth:`Context.after_commit`): only when the
   event's changes committed, never after a rollback.

Work a handler starts in the background after commit (a report refresh) goes through
:meth:`Core.spawn`, so that :meth:`Core.busy` and :meth:`Core.idle` see it (the console waits for
it before reading the next line; tests await it).

Forms and actions registered with a batch handler (the standup answer form, poll votes) are
group-committed instead: see :mod:`bot.batching`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot import directory
from bot.batching import MAX_BATCH, BatchHandler, FormBatcher
from bot.chat import FormErrors, Message, Reply, Response, marked, reply
from bot.clock import Clock
from bot.commands.parse import channel_ref, convert, parse_line, pick_subcommand
from bot.commands.spec import CommandSpec, Permission, SubcommandSpec
from bot.delivery.outbox import enqueue
from bot.errors import PermissionDenied, UserError
from bot.events import (
    NUL_MESSAGE,
    ActionInvocation,
    CommandInvocation,
    DirectMessageReceived,
    FormSubmission,
    InboundEvent,
    ShortcutInvocation,
    nul_fields,
)
from bot.metrics import Metrics, kind_of
from bot.port import DEFAULT_MAX_SELECT_OPTIONS, Method, PlatformDirectory, Target
from storage.db import Database
from storage.models import Channel, Member, ProcessedEvent, Workspace
from storage.outages import DatabaseUnavailable
from storage.upsert import insert_unless_exists

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What a handler gets: the open transaction, who acted, and ways to send."""

    core: Core
    session: AsyncSession
    event: InboundEvent
    workspace: Workspace
    member: Member
    permission: Permission
    now: datetime
    sent_something: bool = False
    schedules_changed: bool = False
    _keys: int = field(default=0, repr=False)
    _after_commit: list[Callable[[], object]] = field(default_factory=list, repr=False)

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` once this event's transaction has committed; never if the
        handler's changes are rolled back (a :class:`UserError`, a failure, a failed commit)."""
        self._after_commit.append(callback)

    async def send(
        self,
        method: Method,
        target: Target,
        msg: Message,
        *,
        key: str | None = None,
        depends_on: int | None = None,
    ) -> int:
        """Queue a message in the outbox, in this event's transaction (invariant 2)."""
        if key is None:
            self._keys += 1
            key = f"{self.event.origin.platform}:{self.event.origin.event_id}:{self._keys}"
        self.sent_something = True
        return await enqueue(
            self.session,
            workspace_id=self.workspace.id,
            method=method,
            target=target,
            message=msg,
            key=key,
            now=self.now,
            depends_on=depends_on,
        )

    async def post(self, channel_id: str, msg: Message, **kwargs: Any) -> int:
        return await self.send(Method.POST, Target(channel_id=channel_id), msg, **kwargs)

    async def dm(self, member: Member, msg: Message, **kwargs: Any) -> int:
        target = Target(user_id=member.platform_user_id, dm_channel_id=member.dm_channel_id)
        return await self.send(Method.DM, target, msg, **kwargs)

    async def channel_to_post(self, raw: str) -> Channel:
        """The channel a typed reference (``#team``, ``<#C123|team>``) names, checked with the
        platform as one the bot may post in; a :class:`UserError` that says what to do."""
        return await directory.resolve_channel(
            self.session,
            self.workspace,
            channel_ref(raw),
            self.core.directory,
            now=self.now,
            to_post=True,
        )

    def require(self, permission: Permission) -> None:
        if self.permission < permission:
            raise PermissionDenied(f"Only {permission.label} can do that.")


CommandHandler = Callable[[Context, dict[str, Any]], Awaitable[Response]]
ActionHandler = Callable[[Context, ActionInvocation], Awaitable[Response]]
FormHandler = Callable[[Context, FormSubmission], Awaitable[Response]]
MessageHandler = Callable[[Context, DirectMessageReceived], Awaitable[Response]]
ShortcutHandler = Callable[[Context, ShortcutInvocation], Awaitable[Response]]


@dataclass(frozen=True)
class Shortcut:
    """A message or user shortcut: ``label`` is its name in the platform's menu (Discord
    context-menu commands: at most 32 characters), ``on`` what it is run on."""

    shortcut_id: str
    label: str
    on: str  # "message" or "user"
    description: str = ""


class Core:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.specs: dict[str, CommandSpec] = {}
        self._commands: dict[tuple[str, str], CommandHandler] = {}
        self._actions: dict[str, ActionHandler] = {}
        self._forms: dict[str, FormHandler] = {}
        self._batchers: dict[str, FormBatcher[FormSubmission]] = {}
        self._action_batchers: dict[str, FormBatcher[ActionInvocation]] = {}
        self._dm_handlers: list[MessageHandler] = []
        self.shortcuts: dict[str, Shortcut] = {}
        self._shortcut_handlers: dict[str, ShortcutHandler] = {}
        self.on_outbox: list[Callable[[], None]] = []
        self.on_schedules_changed: list[Callable[[], Awaitable[None]]] = []
        self._background: set[asyncio.Task[Any]] = set()
        # The platform's people and channels, when its port can look them up (bot.app sets it).
        self.directory: PlatformDirectory | None = None
        # What the platform can show (bot.app sets them from the port; see bot.port).
        self.edit_window: timedelta | None = None
        self.max_select_options: int = DEFAULT_MAX_SELECT_OPTIONS
        self.metrics = Metrics()  # the app's (bot.app sets it)

    # -- background work ----------------------------------------------------------------------

    def spawn(
        self, work: Coroutine[Any, Any, Any], *, name: str | None = None
    ) -> asyncio.Task[Any]:
        """Run ``work`` in the background, tracked by :meth:`busy` and :meth:`idle`. Its errors
        are logged; it should have its own transaction."""
        task = asyncio.create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        if isinstance(task.exception(), DatabaseUnavailable):
            return  # logged once, where the outage was found (storage.outages)
        log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    def busy(self) -> bool:
        """Whether background work started by a handler is still running."""
        return any(not task.done() for task in self._background)

    async def idle(self) -> None:
        """Wait until no background work is running, including work started meanwhile."""
        while pending := [task for task in self._background if not task.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    # -- registration -------------------------------------------------------------------------

    def add_command(self, spec: CommandSpec, handlers: dict[str, CommandHandler]) -> None:
        missing = {s.name for s in spec.subcommands} - set(handlers)
        if missing:
            raise ValueError(f"/{spec.name}: no handler for {sorted(missing)}")
        self.specs[spec.name] = spec
        for name, handler in handlers.items():
            self._commands[(spec.name, name)] = handler

    def extend_command(
        self,
        name: str,
        subcommands: tuple[SubcommandSpec, ...],
        handlers: dict[str, CommandHandler],
    ) -> None:
        """Add subcommands that another feature owns to a registered command (``/raci
        webhook`` and ``/raci policy`` to ``/raci``); help and every adapter see one command."""
        spec = self.specs[name]
        clash = {s.name for s in subcommands} & {s.name for s in spec.subcommands}
        if clash:
            raise ValueError(f"/{name}: {sorted(clash)} already exist")
        missing = {s.name for s in subcommands} - set(handlers)
        if missing:
            raise ValueError(f"/{name}: no handler for {sorted(missing)}")
        self.specs[name] = replace(spec, subcommands=spec.subcommands + subcommands)
        for sub, handler in handlers.items():
            self._commands[(name, sub)] = handler

    def add_action(
        self,
        prefix: str,
        handler: ActionHandler,
        *,
        batch: BatchHandler | None = None,
        max_batch: int | None = None,
    ) -> None:
        """Handle actions whose id is ``prefix`` or starts with ``prefix + ':'``. ``batch``:
        group-commit them (see :mod:`bot.batching`), ``handler`` taking those handed back."""
        self._actions[prefix] = handler
        if batch is not None:
            self._action_batchers[prefix] = FormBatcher(self, batch, max_batch or MAX_BATCH)

    def action_batcher(self, prefix: str) -> FormBatcher[ActionInvocation] | None:
        """The group-commit queue of an action registered with a batch handler."""
        return self._action_batchers.get(prefix)

    def add_form(
        self, form_id: str, handler: FormHandler, *, batch: BatchHandler | None = None
    ) -> None:
        """``batch``: also handle submissions of this form in groups (see :mod:`bot.batching`);
        ``handler`` still takes those the batch hands back, one at a time."""
        self._forms[form_id] = handler
        if batch is not None:
            self._batchers[form_id] = FormBatcher(self, batch)

    def batcher(self, form_id: str) -> FormBatcher[FormSubmission] | None:
        """The group-commit queue of a form registered with a batch handler."""
        return self._batchers.get(form_id)

    def add_shortcut(self, shortcut: Shortcut, handler: ShortcutHandler) -> None:
        """Adapters list :attr:`shortcuts` to declare them (Slack's manifest, Discord's
        context-menu commands) and hand their invocations to :meth:`handle`."""
        if shortcut.on not in ("message", "user"):
            raise ValueError(f"shortcut {shortcut.shortcut_id}: on must be message or user")
        self.shortcuts[shortcut.shortcut_id] = shortcut
        self._shortcut_handlers[shortcut.shortcut_id] = handler

    def add_dm_handler(self, handler: MessageHandler) -> None:
        """DM handlers are asked in order; the first that returns a response wins."""
        self._dm_handlers.append(handler)

    # -- handling -----------------------------------------------------------------------------

    async def handle(self, event: InboundEvent) -> Response:
        """Handle one inbound event exactly once and return the private response, if any."""
        started = time.perf_counter()
        try:
            return await self._handle(event)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.event_seconds.labels(kind_of(event)).observe(elapsed)

    async def _handle(self, event: InboundEvent) -> Response:
        refused = _refuse_nul(event)
        if refused is not None:
            self.metrics.event(kind_of(event), "refused")
            return refused
        if isinstance(event, FormSubmission):
            batcher = self._batchers.get(event.form_id)
            if batcher is not None:
                return await batcher.submit(event)
        elif isinstance(event, ActionInvocation):
            pressed = self._action_batchers.get(event.action_id.split(":", 1)[0])
            if pressed is not None:
                return await pressed.submit(event)
        return await self.handle_alone(event)

    async def handle_alone(self, event: InboundEvent) -> Response:
        """The one-event path: one transaction for this event.

        A :class:`UserError` or a failure rolls the whole transaction back (no savepoint: it
        would cost two round trips on every event for the rare error), and the event is then
        recorded as handled in a transaction of its own, so that a retry does not run it again.
        """
        origin = event.origin
        now = self.clock.now()
        ctx: Context | None = None
        try:
            async with self.db.transaction() as session:
                if not await self._first_time(session, origin.platform, origin.event_id, now):
                    log.info("duplicate %s event %s ignored", origin.platform, origin.event_id)
                    self.metrics.event(kind_of(event), "duplicate")
                    return None
                workspace = await directory.ensure_workspace(
                    session, origin.platform, origin.workspace_id, origin.workspace_name, now
                )
                member = await directory.ensure_member(session, workspace, event.actor, now)
                if isinstance(event, DirectMessageReceived) and event.dm_channel_id:
                    member.dm_channel_id = event.dm_channel_id
                permission = await directory.permission_of(session, member, event.actor)
                ctx = Context(self, session, event, workspace, member, permission, now)
                response = await self._dispatch(ctx)
        except UserError as exc:
            await self._record_handled(event, now)
            log.info("user error in %s: %s", _describe(event), exc.message)
            self.metrics.event(kind_of(event), "user_error")
            if isinstance(event, FormSubmission) and exc.errors:
                return FormErrors(dict(exc.errors))
            return reply(marked(exc.message))
        except DatabaseUnavailable:
            # Told once by the database's health, not with a traceback per event.
            log.info("%s not handled: the database is unavailable", _describe(event))
            self.metrics.event(kind_of(event), "unavailable")
            return reply("syncup cannot reach its database right now; please try again shortly.")
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("%s failed (ref %s)", _describe(event), ref)
            self.metrics.event(kind_of(event), "error")
            if ctx is not None:  # the handler failed, not the bookkeeping before it
                await self._record_handled(event, now)
            return reply(f"Sorry, something went wrong on syncup's side (ref {ref}).")
        assert ctx is not None
        self.metrics.event(kind_of(event), "ok")
        for callback in ctx._after_commit:
            try:
                callback()
            except Exception:
                log.exception("after-commit callback of %s failed", _describe(event))
        if ctx.sent_something:
            for wake in self.on_outbox:
                wake()
        if ctx.schedules_changed:
            for changed in self.on_schedules_changed:
                await changed()
        return response

    async def _record_handled(self, event: InboundEvent, now: datetime) -> None:
        origin = event.origin
        try:
            async with self.db.transaction() as session:
                await self._first_time(session, origin.platform, origin.event_id, now)
        except Exception:
            log.exception("could not record %s as handled", _describe(event))

    async def _dispatch(self, ctx: Context) -> Response:
        event = ctx.event
        if isinstance(event, CommandInvocation):
            return await self._command(ctx, event)
        if isinstance(event, ActionInvocation):
            prefix = event.action_id.split(":", 1)[0]
            handler = self._actions.get(prefix)
            if handler is None:
                raise UserError("That button no longer does anything here.")
            return await handler(ctx, event)
        if isinstance(event, FormSubmission):
            form_handler = self._forms.get(event.form_id)
            if form_handler is None:
                raise UserError("That form has expired; run the command again.")
            return await form_handler(ctx, event)
        if isinstance(event, ShortcutInvocation):
            shortcut_handler = self._shortcut_handlers.get(event.shortcut_id)
            if shortcut_handler is None:
                raise UserError("That shortcut no longer does anything here.")
            return await shortcut_handler(ctx, event)
        for dm_handler in self._dm_handlers:
            response = await dm_handler(ctx, event)
            if response is not None:
                return response
        return reply(marked("I only understand commands. Type `/syncup help` to see them."))

    async def _command(self, ctx: Context, event: CommandInvocation) -> Response:
        spec = self.specs.get(event.command)
        if spec is None:
            raise UserError(f"Unknown command /{event.command}. Type `/syncup help`.")
        sub: SubcommandSpec | None
        if event.options is not None:
            sub = spec.subcommand(event.subcommand or "")
            if sub is None:
                raise UserError(f"Unknown command /{spec.name} {event.subcommand}.")
            args = convert(spec, sub, event.options)
        else:
            sub, rest = pick_subcommand(spec, event.text)
            if sub is None:
                sub = spec.subcommand("help")
                if sub is None:
                    raise UserError(f"Type `/{spec.name} help` to see what it can do.")
            args = parse_line(spec, sub, rest)
        ctx.require(sub.permission)
        return await self._commands[(spec.name, sub.name)](ctx, args)

    @staticmethod
    async def _first_time(
        session: AsyncSession, platform: str, event_id: str, now: datetime
    ) -> bool:
        values = {"platform": platform, "event_id": event_id, "received_at": now}
        inserted = await insert_unless_exists(
            session, ProcessedEvent, values, ProcessedEvent.event_id
        )
        return inserted is not None


def _refuse_nul(event: InboundEvent) -> Response:
    """Input with a NUL character, refused before anything reads it (no database stores one in
    text; on PostgreSQL the insert would fail, and its parameters would be logged)."""
    fields = nul_fields(event)
    if not fields:
        return None
    if isinstance(event, FormSubmission) and fields != ["text"]:
        return FormErrors({name: NUL_MESSAGE.format(what="answer") for name in fields})
    if isinstance(event, ShortcutInvocation):  # someone else's message: nothing to remove
        return reply(marked("That message has a NUL character (\\0) in it: syncup can't store it."))
    what = {
        CommandInvocation: "command",
        ActionInvocation: "choice",
        DirectMessageReceived: "answer",
        FormSubmission: "form",
    }[type(event)]
    return reply(marked(NUL_MESSAGE.format(what=what)))


def _describe(event: InboundEvent) -> str:
    origin = event.origin
    what = type(event).__name__
    if isinstance(event, CommandInvocation):
        what = f"/{event.command} {event.subcommand or event.text.split(' ', 1)[0]}".rstrip()
    elif isinstance(event, ActionInvocation):
        what = f"action {event.action_id}"
    elif isinstance(event, FormSubmission):
        what = f"form {event.form_id}"
    elif isinstance(event, ShortcutInvocation):
        what = f"shortcut {event.shortcut_id}"
    return (
        f"{what} by {event.actor.user_id} in {origin.platform}:{origin.workspace_id} "
        f"(event {origin.event_id})"
    )


__all__ = ["Context", "Core", "Reply", "Shortcut"]
