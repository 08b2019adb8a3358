"""Interactions (slash commands, context-menu shortcuts, buttons and selects, modal submits,
autocomplete) and DMs, turned into core events, and the core's response turned into Discord's.

Acknowledging within 3 s (invariant 4): the core's ``handle`` is raced against ``ack_seconds``
(2 s). Almost always it answers first, and its response becomes the initial response itself:
a private message (type 4, ephemeral), or a modal (type 9), which only an initial response can
be. When it is slower, the interaction is deferred (type 5, ephemeral "thinking") before the
deadline and the answer edits that placeholder when it comes, well inside the token's 15 minutes;
a form that arrives after a defer cannot be a modal any more, so the member gets a button that
opens it. Deciding per command up front (defer all, or none) would either lose modals or risk the
deadline on a slow database; racing keeps both.

A repeated interaction id (a gateway replay after a resume) is answered once: it is dropped here,
and the core also handles an event id once (``Origin.event_id`` is the interaction id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.discord import commands, render
from adapters.discord.directory import learn_named_members, record_resolved, workspace_for_dm
from adapters.discord.forms import MODAL_PREFIX, NEXT_PREFIX, FormSession, FormSessions
from adapters.discord.port import PLATFORM, nonce_for
from adapters.discord.rest import DiscordHTTPError, DiscordRest
from bot.chat import (
    Actions,
    Bold,
    Button,
    Form,
    FormErrors,
    Message,
    OpenForm,
    Reply,
    Response,
    Section,
    message,
    reply,
    text,
)
from bot.clock import Clock
from bot.core import Core
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
from bot.port import MemberInfo
from storage.db import Database

log = logging.getLogger(__name__)

# Interaction types
PING, COMMAND, COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
# Interaction callback types
MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, AUTOCOMPLETE_RESULT, MODAL = 4, 5, 6, 8, 9
EPHEMERAL = 64
ACK_SECONDS = 2.0
SEEN_LIMIT = 10_000
NOT_IN_A_SERVER = (
    "I don't know you in any server yet: use a syncup command in your server first, "
    "then try again here."
)
FORM_EXPIRED = "That form has expired (or syncup restarted); run the command again."


@dataclass(frozen=True)
class Incoming:
    """One interaction as syncup needs it (built from discord.py's ``Interaction``)."""

    id: str
    token: str
    type: int
    data: dict[str, Any]
    user_id: str
    display_name: str
    is_admin: bool = False
    guild_id: str | None = None
    guild_name: str = ""
    channel_id: str | None = None
    channel_name: str = ""
    message_id: str | None = None


@dataclass(frozen=True)
class IncomingDM:
    message_id: str
    channel_id: str
    user_id: str
    display_name: str
    content: str


@dataclass
class _Answer:
    """How an interaction has been answered so far."""

    deferred: bool = False
    extra: list[dict[str, Any]] = field(default_factory=list)


class Interactions:
    def __init__(
        self,
        core: Core,
        db: Database,
        rest: DiscordRest,
        application_id: Callable[[], str],
        clock: Clock,
        *,
        ack_seconds: float = ACK_SECONDS,
        guild_name: Callable[[str], str] | None = None,
        lookup: Callable[[str, str], Awaitable[MemberInfo | None]] | None = None,
    ) -> None:
        self.core = core
        self.db = db
        self.rest = rest
        self.application_id = application_id
        self.clock = clock
        self.ack_seconds = ack_seconds
        self.forms = FormSessions()
        self._guild_name = guild_name or (lambda guild_id: "")
        # (guild id, typed name) -> the member Discord's search finds, for names in forms.
        self.lookup = lookup
        self._seen: OrderedDict[str, None] = OrderedDict()

    # -- entry points -------------------------------------------------------------------------

    def first_time(self, event_id: str) -> bool:
        if event_id in self._seen:
            return False
        self._seen[event_id] = None
        while len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
        return True

    async def interaction(self, incoming: Incoming) -> None:
        if not self.first_time(incoming.id):
            log.info("duplicate interaction %s ignored", incoming.id)
            return
        try:
            if incoming.type == COMMAND:
                await self._command(incoming)
            elif incoming.type == COMPONENT:
                await self._component(incoming)
            elif incoming.type == MODAL_SUBMIT:
                await self._modal_submit(incoming)
            elif incoming.type == AUTOCOMPLETE:
                await self._autocomplete(incoming)
        except DiscordHTTPError as exc:
            log.warning("answering interaction %s failed: %s", incoming.id, exc)
        except render.RenderError:
            # A core message Discord cannot show (a bug): say so privately, never a stack trace.
            log.exception("interaction %s: the answer cannot be shown on Discord", incoming.id)
            sorry = message("Sorry, syncup could not show its answer on Discord (logged).")
            with contextlib.suppress(DiscordHTTPError):
                await self._callback(incoming, MESSAGE, _private(sorry))

    async def direct_message(self, dm: IncomingDM) -> None:
        if not self.first_time(f"m{dm.message_id}"):
            return
        guild = await workspace_for_dm(self.db, dm.user_id, dm.channel_id)
        if guild is None:
            await self._post_dm(dm, render.render_message(message(NOT_IN_A_SERVER)))
            return
        origin = Origin(PLATFORM, guild, dm.message_id, self._guild_name(guild), dm.channel_id)
        actor = Actor(dm.user_id, dm.display_name)
        response = await self.core.handle(
            DirectMessageReceived(origin, actor, dm.content, dm.channel_id)
        )
        if isinstance(response, Reply):
            await self._post_dm(dm, render.render_message(response.message))
        elif isinstance(response, OpenForm):
            session = self.forms.open(response.form, actor, guild, dm.channel_id)
            prompt = _private(
                self._open_button(session, "Press the button to open it."), internal=True
            )
            prompt.pop("flags")
            await self._post_dm(dm, [prompt])

    # -- commands -------------------------------------------------------------------------------

    async def _origin(self, incoming: Incoming, guild_hint: str | None = None) -> Origin | None:
        guild = incoming.guild_id or guild_hint
        if guild is None:
            guild = await workspace_for_dm(self.db, incoming.user_id, incoming.channel_id)
        if guild is None:
            return None
        name = incoming.guild_name or self._guild_name(guild)
        return Origin(
            PLATFORM, guild, incoming.id, name, incoming.channel_id, incoming.channel_name
        )

    def _actor(self, incoming: Incoming) -> Actor:
        return Actor(incoming.user_id, incoming.display_name, None, incoming.is_admin)

    async def _command(self, incoming: Incoming) -> None:
        if incoming.data.get("type") in (commands.USER_COMMAND, commands.MESSAGE_COMMAND):
            await self._context_menu(incoming)
            return

        async def build() -> InboundEvent | None:
            origin = await self._origin(incoming)
            if origin is None:
                return None
            name = str(incoming.data.get("name", ""))
            spec = self.core.specs.get(name)
            subcommand, options, _ = commands.invocation_options(spec, incoming.data)
            resolved = incoming.data.get("resolved")
            if resolved and incoming.guild_id:
                await record_resolved(
                    self.db, incoming.guild_id, origin.workspace_name, resolved, self.clock.now()
                )
            return CommandInvocation(
                origin, self._actor(incoming), name, subcommand=subcommand, options=options
            )

        await self._through_core(incoming, build)

    async def _context_menu(self, incoming: Incoming) -> None:
        """A shortcut from a message's or a member's Apps menu. The message comes whole in
        ``data.resolved`` (content included without the message content intent), the member
        too (learnt, so the core can name them)."""
        data = incoming.data
        shortcut_id = commands.shortcut_named(self.core.shortcuts.values(), data)
        target = str(data.get("target_id") or "")
        resolved = data.get("resolved") or {}

        async def build() -> InboundEvent | None:
            origin = await self._origin(incoming)
            if origin is None:
                return None
            actor = self._actor(incoming)
            if data.get("type") == commands.USER_COMMAND:
                if resolved and incoming.guild_id:
                    await record_resolved(
                        self.db,
                        incoming.guild_id,
                        origin.workspace_name,
                        resolved,
                        self.clock.now(),
                    )
                return ShortcutInvocation(origin, actor, shortcut_id, target_user_id=target or None)
            found = (resolved.get("messages") or {}).get(target) or {}
            channel = str(found.get("channel_id") or incoming.channel_id or "")
            return ShortcutInvocation(
                origin,
                actor,
                shortcut_id,
                message_text=commands.message_text(found),
                message_link=commands.jump_link(incoming.guild_id, channel, target),
                message_author_id=str((found.get("author") or {}).get("id") or "") or None,
            )

        await self._through_core(incoming, build)

    async def _autocomplete(self, incoming: Incoming) -> None:
        spec = self.core.specs.get(str(incoming.data.get("name", "")))
        subcommand, options, focused = commands.invocation_options(spec, incoming.data)
        choices: list[dict[str, str]] = []
        sub = spec.subcommand(subcommand or "") if spec else None
        option = next((o for o in sub.options if o.name == focused), None) if sub else None
        if option is not None and option.type.value == "timezone":
            choices = commands.timezone_choices(str(options.get(focused or "", "")))
        await self._callback(incoming, AUTOCOMPLETE_RESULT, {"choices": choices})

    # -- components -----------------------------------------------------------------------------

    async def _component(self, incoming: Incoming) -> None:
        custom_id = str(incoming.data.get("custom_id", ""))
        if custom_id.startswith(NEXT_PREFIX):
            await self._next_step(incoming, custom_id)
            return
        parsed = render.decode_custom_id(custom_id)
        values = tuple(str(v) for v in incoming.data.get("values") or ())

        async def build() -> InboundEvent | None:
            origin = await self._origin(incoming, parsed.guild_id)
            if origin is None:
                return None
            return ActionInvocation(
                origin,
                self._actor(incoming),
                parsed.action_id,
                parsed.value or (values[0] if len(values) == 1 else ""),
                values,
                incoming.channel_id,
                incoming.message_id,
            )

        await self._through_core(incoming, build)

    async def _next_step(self, incoming: Incoming, custom_id: str) -> None:
        token, _, step_text = custom_id[len(NEXT_PREFIX) :].partition(":")
        session = self.forms.get(token, incoming.user_id)
        step = int(step_text) if step_text.isdigit() else 0
        if session is None or step >= len(session.steps):
            await self._callback(incoming, MESSAGE, _private(message(FORM_EXPIRED)))
            return
        await self._callback(incoming, MODAL, self._modal(session, step))

    def _modal(self, session: FormSession, step: int) -> dict[str, Any]:
        return render.modal(
            session.modal_id(step), session.title(step), session.steps[step], session.values
        )

    # -- modal submits --------------------------------------------------------------------------

    async def _modal_submit(self, incoming: Incoming) -> None:
        custom_id = str(incoming.data.get("custom_id", ""))
        token, _, step_text = custom_id[len(MODAL_PREFIX) :].partition(":")
        session = (
            self.forms.get(token, incoming.user_id) if custom_id.startswith(MODAL_PREFIX) else None
        )
        step = int(step_text) if step_text.isdigit() else 0
        if session is None or step >= len(session.steps):
            await self._callback(incoming, MESSAGE, _private(message(FORM_EXPIRED)))
            return
        session.take(render.modal_values(incoming.data.get("components") or []), step)
        if step + 1 < len(session.steps):
            total = len(session.steps)
            prompt = message(
                text(Bold(session.form.title), f": step {step + 1} of {total} saved."),
                Actions(
                    (
                        Button(
                            f"Continue ({step + 2}/{total})",
                            f"{NEXT_PREFIX}{session.token}:{step + 1}",
                            style="primary",
                        ),
                    )
                ),
            )
            await self._callback(incoming, MESSAGE, _private(prompt, internal=True))
            return
        form = session.form

        async def build() -> InboundEvent | None:
            origin = await self._origin(incoming, session.guild_id)
            if origin is None:
                return None
            values = dict(session.values)
            if self.lookup is not None:
                guild = origin.workspace_id

                async def search(name: str) -> MemberInfo | None:
                    assert self.lookup is not None
                    return await self.lookup(guild, name)

                await learn_named_members(
                    self.db, guild, origin.workspace_name, values, search, self.clock.now()
                )
            return FormSubmission(origin, self._actor(incoming), form.form_id, values, form.state)

        await self._through_core(incoming, build, session)

    # -- the core, within the deadline ------------------------------------------------------------

    async def _through_core(
        self,
        incoming: Incoming,
        build: Callable[[], Awaitable[InboundEvent | None]],
        session: FormSession | None = None,
    ) -> None:
        """Build the event (database look-ups) and handle it, racing the deadline: everything
        that may be slow happens inside the race."""

        async def work() -> tuple[InboundEvent | None, Response]:
            event = await build()
            if event is None:
                return None, reply(NOT_IN_A_SERVER)
            return event, await self.core.handle(event)

        task = asyncio.ensure_future(work())
        done, _ = await asyncio.wait({task}, timeout=self.ack_seconds)
        answer = _Answer()
        if task not in done:
            await self._callback(incoming, DEFERRED_MESSAGE, {"flags": EPHEMERAL})
            answer.deferred = True
        event, response = await task
        await self._respond(incoming, event, response, answer, session)

    async def _respond(
        self,
        incoming: Incoming,
        event: InboundEvent | None,
        response: Response,
        answer: _Answer,
        session: FormSession | None,
    ) -> None:
        if isinstance(response, FormErrors):
            if session is None:
                body = message(*response.errors.values())
            else:
                session.fix(response.errors)
                body = self._errors_message(session, response.errors)
            await self._show(incoming, _private(body, internal=True), answer)
            return
        if session is not None:
            self.forms.close(session.token)
        if isinstance(response, OpenForm) and event is not None:
            origin = event.origin
            opened = self.forms.open(
                response.form, event.actor, origin.workspace_id, origin.channel_id
            )
            if answer.deferred or incoming.type == MODAL_SUBMIT:
                prompt = self._open_button(opened, "Press the button to fill it in.")
                await self._show(incoming, _private(prompt, internal=True), answer)
            else:
                await self._callback(incoming, MODAL, self._modal(opened, 0))
            return
        if isinstance(response, Reply):
            guild = event.origin.workspace_id if event is not None else None
            payloads = render.render_message(response.message, guild_id=guild)
            first, rest = payloads[0], payloads[1:]
            await self._show(incoming, _private_payload(first), answer)
            for extra in rest:
                await self._followup(incoming, _private_payload(extra))
            return
        if incoming.type == COMPONENT and not answer.deferred:
            await self._callback(incoming, DEFERRED_UPDATE, None)
            return
        done = "Saved." if incoming.type == MODAL_SUBMIT else "Done."
        await self._show(incoming, _private(message(done)), answer)

    def _open_button(self, session: FormSession, hint: str) -> Message:
        return message(
            text(Bold(session.form.title), f": {hint}"),
            Actions((Button("Open the form", f"{NEXT_PREFIX}{session.token}:0", "primary"),)),
        )

    def _errors_message(self, session: FormSession, errors: dict[str, str]) -> Message:
        labels = {f.name: f.label for f in session.form.fields}
        lines = [Section(text(Bold("Please fix:")))]
        for name, problem in errors.items():
            label = labels.get(name)
            lines.append(Section(text(Bold(f"{label}: "), problem) if label else text(problem)))
        count = sum(len(step) for step in session.steps)
        fix = Button(
            f"Fix ({count} field{'s' if count != 1 else ''})",
            f"{NEXT_PREFIX}{session.token}:0",
            "primary",
        )
        return Message((*lines, Actions((fix,))))

    # -- Discord calls ---------------------------------------------------------------------------

    async def _callback(self, incoming: Incoming, kind: int, data: dict[str, Any] | None) -> None:
        body: dict[str, Any] = {"type": kind}
        if data is not None:
            body["data"] = data
        await self.rest.request(
            "POST", f"/interactions/{incoming.id}/{incoming.token}/callback", json_body=body
        )

    async def _show(self, incoming: Incoming, data: dict[str, Any], answer: _Answer) -> None:
        """The initial response, or after a defer the edit of its placeholder."""
        if not answer.deferred:
            await self._callback(incoming, MESSAGE, data)
            return
        edit = {k: v for k, v in data.items() if k != "flags"}
        await self.rest.request(
            "PATCH",
            f"/webhooks/{self.application_id()}/{incoming.token}/messages/@original",
            json_body=edit,
            auth=False,
        )

    async def _followup(self, incoming: Incoming, data: dict[str, Any]) -> None:
        await self.rest.request(
            "POST",
            f"/webhooks/{self.application_id()}/{incoming.token}",
            json_body=data,
            auth=False,
        )

    async def _post_dm(self, dm: IncomingDM, payloads: list[dict[str, Any]]) -> None:
        for part, payload in enumerate(payloads):
            payload["nonce"] = nonce_for(f"reply:{dm.message_id}", part)
            payload["enforce_nonce"] = True
            try:
                await self.rest.request(
                    "POST", f"/channels/{dm.channel_id}/messages", json_body=payload
                )
            except DiscordHTTPError as exc:
                log.warning("replying to DM %s failed: %s", dm.message_id, exc)
                return


def _private_payload(payload: dict[str, Any]) -> dict[str, Any]:
    return dict(payload, flags=EPHEMERAL)


def _private(msg: Message, *, internal: bool = False) -> dict[str, Any]:
    """A private message; ``internal``: it carries the adapter's own components (form steps),
    whose ids are not core action ids."""
    if not internal:
        return _private_payload(render.render_message(msg)[0])
    plain = Message(tuple(b for b in msg.blocks if not isinstance(b, Actions)), msg.summary)
    payload = _private_payload(render.render_message(plain)[0])
    rows = []
    for block in msg.blocks:
        if isinstance(block, Actions):
            rows.append(
                {
                    "type": render.ACTION_ROW,
                    "components": [
                        {
                            "type": render.BUTTON,
                            "style": render.STYLES.get(b.style, 2),
                            "label": b.label[: render.BUTTON_LABEL],
                            "custom_id": b.action_id,
                        }
                        for b in block.elements
                        if isinstance(b, Button)
                    ],
                }
            )
    payload["components"] = rows
    return payload


Handler = Callable[[Incoming], Awaitable[None]]
__all__ = ["Form", "Incoming", "IncomingDM", "Interactions"]
