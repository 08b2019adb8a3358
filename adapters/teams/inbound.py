"""Teams activities (already authenticated by the SDK) as core events, and the answers back.

* A message in a 1:1 chat, or with an @mention of the bot in a channel, is a command when its
  first word names one (``standup setup``, ``help``); a first word close to a command's name
  gets "did you mean"; in a 1:1 chat anything else is a DM to the core (standup answers).
* A card's ``Action.Execute`` arrives as an ``adaptiveCard/action`` invoke with the data the
  card carried: a button (the core's action id and value), a select (its input), or a form
  (the whole form, and the inputs). The invoke's answer refreshes the card for the person who
  pressed it: a form that opens, a form with its errors under the inputs, or what a form's
  submission answered; a button's private answer is a short message on the card and a card in
  the member's 1:1 chat.
* Private answers (``Reply``/``OpenForm``) to a message go to the same chat when it is the 1:1
  chat, else to the member's 1:1 chat (Teams has no private message in a channel).
* Every activity refreshes the sender's conversation reference (and the channel's).
"""

from __future__ import annotations

import difflib
import hashlib
import html
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from adapters.teams import render
from adapters.teams.ids import member_key
from adapters.teams.port import DM_PREFIX, TeamsPort, sdk_activity
from adapters.teams.refs import CHANNEL, MEMBER, PLATFORM, Reference, References
from bot.chat import FormErrors, Message, OpenForm, Reply, Response, Section, marked
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
)

log = logging.getLogger(__name__)

_TAG = re.compile(r"<[^>]+>")
HELP_WORDS = ("help", "syncup")
NOT_A_COMMAND = (
    "I only understand commands here. Type `help` to see them "
    "(in a channel, mention me first: @{bot} help)."
)

Send = Callable[[str, str, Message], Awaitable[None]]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class Activity:
    """The parts of an activity (its JSON as Teams sent it) that syncup reads."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.conversation = _dict(raw.get("conversation"))
        self.channel_data = _dict(raw.get("channelData"))
        self.sender = _dict(raw.get("from"))
        self.recipient = _dict(raw.get("recipient"))

    @property
    def tenant(self) -> str:
        tenant = self.conversation.get("tenantId") or _dict(self.channel_data.get("tenant")).get(
            "id"
        )
        return str(tenant or "")

    @property
    def service_url(self) -> str:
        return str(self.raw.get("serviceUrl") or "")

    @property
    def personal(self) -> bool:
        return self.conversation.get("conversationType") in (None, "personal")

    @property
    def conversation_id(self) -> str:
        return str(self.conversation.get("id") or "")

    @property
    def channel_id(self) -> str | None:
        if self.personal:
            return None
        channel = _dict(self.channel_data.get("channel")).get("id")
        return str(channel or self.conversation_id.split(";")[0])

    @property
    def channel_name(self) -> str:
        return str(_dict(self.channel_data.get("channel")).get("name") or "")

    @property
    def user_id(self) -> str:
        """Members are known by their Entra object id (stable, short enough to store), in the
        shape of :func:`member_key`."""
        aad = self.sender.get("aadObjectId")
        return member_key(str(aad)) if aad else str(self.sender.get("id") or "")

    def actor(self) -> Actor:
        zone = self.raw.get("localTimezone")
        return Actor(
            self.user_id,
            str(self.sender.get("name") or ""),
            zone if isinstance(zone, str) and zone else None,
        )

    def origin(self) -> Origin:
        key = f"{self.conversation_id}|{self.raw.get('id') or ''}|{self.raw.get('name') or ''}"
        event_id = "teams-" + hashlib.sha256(key.encode()).hexdigest()[:40]
        team = _dict(self.channel_data.get("team"))
        return Origin(
            PLATFORM,
            self.tenant,
            event_id,
            str(team.get("name") or ""),
            self.channel_id or self.conversation_id,
            self.channel_name,
        )

    def mentions(self) -> list[tuple[str, str, str]]:
        """The people @mentioned (not the bot): (the text shown, their id, their name)."""
        bot = str(self.recipient.get("id") or "")
        found = []
        for entity in self.raw.get("entities") or []:
            entity = _dict(entity)
            mentioned = _dict(entity.get("mentioned"))
            shown, who = str(entity.get("text") or ""), str(mentioned.get("id") or "")
            if entity.get("type") == "mention" and shown and who and who != bot:
                found.append((shown, who, str(mentioned.get("name") or "")))
        return found

    def command_text(self, people: dict[str, str] | None = None) -> str:
        """The message's text without the bot's @mention and tags; ``people`` maps each other
        mention's shown text to what the command line says instead (``<@member key>``)."""
        text = str(self.raw.get("text") or "")
        bot = str(self.recipient.get("id") or "")
        for entity in self.raw.get("entities") or []:
            entity = _dict(entity)
            shown = str(entity.get("text") or "")
            if entity.get("type") == "mention" and shown:
                if _dict(entity.get("mentioned")).get("id") == bot:
                    text = text.replace(shown, " ")
        slots = {f"\ue000{n}\ue001": v for n, v in enumerate((people or {}).values())}
        for slot, shown in zip(slots, people or {}, strict=True):
            text = text.replace(shown, slot)
        text = html.unescape(_TAG.sub(" ", text))
        for slot, instead in slots.items():
            text = text.replace(slot, instead)
        return text.strip()


def _is_object_id(value: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-fA-F-]{36}", value))


class Inbound:
    def __init__(
        self,
        core: Core,
        clock: Clock,
        refs: References,
        port: TeamsPort,
        *,
        bot_name: str,
    ) -> None:
        self.core = core
        self.clock = clock
        self.refs = refs
        self.port = port
        self.bot_name = bot_name
        self.handled = 0

    # -- references ------------------------------------------------------------------------------

    async def remember(self, activity: Activity) -> None:
        tenant, service = activity.tenant, activity.service_url
        if not tenant or not service:
            return
        now = self.clock.now()
        team = str(_dict(activity.channel_data.get("team")).get("name") or "")
        if activity.user_id and activity.sender.get("id"):
            chat = activity.conversation_id if activity.personal else None
            ref = Reference(
                service, str(activity.sender["id"]), chat, activity.actor().display_name
            )
            await self.refs.remember(
                tenant, MEMBER, activity.user_id, ref, now, workspace_name=team
            )
        channel = activity.channel_id
        if channel:
            # A channel's reference names its team (``teams_id``): posts stop when syncup is
            # removed from that team.
            team_id = _dict(activity.channel_data.get("team")).get("id")
            team_ref = str(team_id) if team_id else None
            ref = Reference(service, team_ref, channel, activity.channel_name)
            await self.refs.remember(tenant, CHANNEL, channel, ref, now, workspace_name=team)

    # -- messages --------------------------------------------------------------------------------

    async def message(self, raw: dict[str, Any]) -> None:
        activity = Activity(raw)
        await self.remember(activity)
        try:
            event = self._message_event(activity, await self._people(activity))
            if event is None:
                return
            if isinstance(event, Message):
                await self._private(activity, event)
                return
            response = await self.core.handle(event)
            await self._respond_to_message(activity, response)
        finally:
            self.handled += 1

    async def _people(self, activity: Activity) -> dict[str, str]:
        """Each @mentioned person as ``<@member key>`` (mention entities name Teams ids; the
        references map them to the members syncup knows), else ``@name``."""
        people: dict[str, str] = {}
        for shown, who, name in activity.mentions():
            key = member_key(who) if _is_object_id(who) else None
            key = key or await self.refs.member_of(activity.tenant, who)
            people[shown] = f"<@{key}>" if key else "@" + (name or who).replace(" ", "")
        return people

    def _message_event(
        self, activity: Activity, people: dict[str, str]
    ) -> InboundEvent | Message | None:
        line = activity.command_text(people)
        word, _, rest = line.partition(" ")
        name = word.lower().lstrip("/")
        origin, actor = activity.origin(), activity.actor()
        specs = self.core.specs
        if name in specs:
            return CommandInvocation(origin, actor, name, rest.strip())
        if name in HELP_WORDS or (not name and not activity.personal):
            return CommandInvocation(origin, actor, "syncup", rest.strip() if name else "help")
        close = difflib.get_close_matches(name, [*specs, "help"], n=1, cutoff=0.75)
        if close and (not activity.personal or len(line.split()) <= 4):
            suggestion = f"{close[0]} {rest.strip()}".strip()
            return _text(
                f"Unknown command `{word}`. Did you mean `{suggestion}`? "
                "Type `help` to see them all."
            )
        if activity.personal:
            return DirectMessageReceived(origin, actor, line)
        return _text(NOT_A_COMMAND.format(bot=self.bot_name))

    async def _respond_to_message(self, activity: Activity, response: Response) -> None:
        if isinstance(response, Reply):
            await self._private(activity, response.message)
        elif isinstance(response, OpenForm):
            await self._send_card(activity, render.render_form(response.form))
        elif isinstance(response, FormErrors):  # a form the core expected: none is open here
            await self._private(activity, _text(" ".join(response.errors.values())))

    async def _private(self, activity: Activity, msg: Message) -> None:
        for content in render.render_message(msg):
            await self._send_card(activity, content, msg.fallback())

    async def _send_card(
        self, activity: Activity, content: dict[str, Any], summary: str = ""
    ) -> None:
        if activity.personal:
            conversation, service = activity.conversation_id, activity.service_url
        else:
            conversation, service = await self.port.dm_conversation(
                activity.tenant, activity.user_id
            )
        payload = render.activity(content, summary)
        api = self.port.api_for(service)
        await api.conversations.create_activity(conversation, sdk_activity(payload))

    # -- card actions ----------------------------------------------------------------------------

    async def card_action(self, raw: dict[str, Any]) -> dict[str, Any]:
        activity = Activity(raw)
        await self.remember(activity)
        try:
            return await self._card_action(activity)
        finally:
            self.handled += 1

    async def _card_action(self, activity: Activity) -> dict[str, Any]:
        value = _dict(activity.raw.get("value"))
        action = _dict(value.get("action"))
        data = _dict(action.get("data"))
        kind = data.get("syncup")
        origin, actor = activity.origin(), activity.actor()
        message_id = str(activity.raw.get("replyToId") or "") or None
        # As the port recorded the card's message: a 1:1 chat by its member (DM_PREFIX).
        where = DM_PREFIX + activity.user_id if activity.personal else activity.channel_id
        if kind == "form":
            form = render.submitted_form(data)
            if form is None:
                return _toast(
                    "That form is from an older version of syncup; run the command again."
                )
            values = render.form_values(form, data)
            submission = FormSubmission(origin, actor, form.form_id, values, form.state)
            response = await self.core.handle(submission)
            if isinstance(response, FormErrors):
                shown = render.with_values(form, values)
                return _card(render.render_form(shown, response.errors))
            return await self._answer(activity, response, replace=True)
        if kind == "action":
            event: InboundEvent = ActionInvocation(
                origin,
                actor,
                str(data.get("action_id") or ""),
                str(data.get("value") or ""),
                message_channel_id=where,
                message_id=message_id,
            )
        elif kind == "select":
            chosen = str(data.get(str(data.get("input") or "")) or "")
            values = tuple(v for v in chosen.split(",") if v)
            if not values:
                return _toast("Choose an option first.")
            event = ActionInvocation(
                origin,
                actor,
                str(data.get("action_id") or ""),
                values[0],
                values,
                message_channel_id=where,
                message_id=message_id,
            )
        else:
            return _toast("That button is from an older version of syncup; run the command again.")
        response = await self.core.handle(event)
        return await self._answer(activity, response, replace=False)

    async def _answer(
        self, activity: Activity, response: Response, *, replace: bool
    ) -> dict[str, Any]:
        if isinstance(response, OpenForm):
            return _card(render.render_form(response.form))
        if isinstance(response, Reply):
            cards = render.render_message(response.message)
            if replace and len(cards) == 1:
                return _card(cards[0])
            await self._private(activity, response.message)
            return _toast(response.message.fallback() or "Done.")
        if replace:
            return _card(render.card([{"type": "TextBlock", "text": "Saved.", "wrap": True}]))
        return _toast("Done.")


def _text(source: str) -> Message:
    return Message((Section(marked(source)),))


def _card(content: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": 200, "type": render.CARD, "value": content}


def _toast(message: str) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "type": "application/vnd.microsoft.activity.message",
        "value": message[:250],
    }
