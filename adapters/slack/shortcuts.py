"""Shortcuts on Slack: the core's message shortcuts as Slack message shortcuts, its user
shortcuts as global shortcuts that first ask who.

- **Message shortcuts** ("Report as blocker") are Slack message shortcuts: the ``...`` menu of
  any message. Slack sends a ``message_action`` payload with the message (text, author, ts),
  the channel, a ``trigger_id`` and a ``response_url``. syncup acknowledges at once, then hands
  the core a :class:`~bot.events.ShortcutInvocation` with the text (Slack's ``&amp;`` escapes
  undone, ``<#C1|team>`` and ``<url|label>`` made readable), a permalink built from the team's
  domain (``https://acme.slack.com/archives/C1/p1700000000000100``; chat.getPermalink only
  when a payload has no domain) and the author. The core's answer is rendered like a slash
  command's: a form opens with the trigger id (views.open), a reply is ephemeral (the
  ``response_url``).
- **User shortcuts** ("Give kudos"): Slack has none, so each is a *global* shortcut (the
  shortcuts menu of the message composer and the search bar) that opens a short modal asking
  who (Slack's people picker) and where (the conversation it was opened from, by default).
  Submitting it runs the shortcut on that person; a form the feature opens replaces the modal,
  a reply goes ephemerally to the chosen conversation (Slack gives a ``response_url`` for it).

Every invocation is handled once: its event id is ``shortcut:<trigger_id>`` (a Socket Mode
redelivery carries the same payload, so the same id), and the core drops a repeated one.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import forms, render
from adapters.slack.events import PLATFORM, team_of
from bot.chat import Reply, Response, message
from bot.core import Shortcut
from bot.events import InboundEvent, Origin, ShortcutInvocation

if TYPE_CHECKING:
    from adapters.slack.app import Ack, SlackAdapter

log = logging.getLogger(__name__)

PICK_PREFIX = "syncup-pick:"
WHO, WHERE = "who", "where"
MAX_DESCRIPTION = 150  # the manifest schema's limit
_LABELLED = re.compile(r"<([#@!]?)([^<>|]+)\|([^<>]*)>")
_BARE_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)>")
_BARE_URL = re.compile(r"<((?:https?|mailto):[^<>|]+)>")


def manifest_entries(shortcuts: list[Shortcut]) -> list[dict[str, str]]:
    """``features.shortcuts`` of the app manifest: message shortcuts as ``message``, user
    shortcuts as ``global`` (the modal that runs them asks who)."""
    out = []
    for shortcut in shortcuts:
        description = shortcut.description or (
            f"{shortcut.label} (on a message)"
            if shortcut.on == "message"
            else f"{shortcut.label}: choose a person"
        )
        out.append(
            {
                "name": shortcut.label,
                "type": "message" if shortcut.on == "message" else "global",
                "callback_id": shortcut.shortcut_id,
                "description": render.shorten(description, MAX_DESCRIPTION),
            }
        )
    return out


def readable(text: str) -> str:
    """A message's text as a person reads it: Slack's ``&amp;``/``&lt;``/``&gt;`` undone,
    ``<#C1|team>`` as ``#team``, ``<https://x|label>`` as ``label (https://x)``. User
    mentions stay ``<@U1>``: the core knows them by id."""

    def labelled(match: re.Match[str]) -> str:
        sigil, target, label = match.groups()
        if sigil == "#":
            return f"#{label}" if label else f"<#{target}>"
        if sigil in ("@", "!"):
            return match.group(0)
        return f"{label} ({target})" if label and label != target else target

    text = _LABELLED.sub(labelled, text)
    text = _BARE_URL.sub(lambda m: m.group(1), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def permalink(domain: str, channel: str, message: dict[str, Any]) -> str:
    """The message's link as Slack's "Copy link" makes it (a reply carries its thread)."""
    ts = str(message.get("ts", ""))
    link = f"https://{domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
    thread = message.get("thread_ts")
    if thread and thread != ts:
        link += f"?thread_ts={thread}&cid={channel}"
    return link


class SlackShortcuts:
    """The shortcut listeners of one :class:`~adapters.slack.app.SlackAdapter`."""

    def __init__(self, adapter: SlackAdapter) -> None:
        self.adapter = adapter

    def register(self, bolt: Any) -> None:
        """Before the adapter's catch-all view listener: bolt runs the first that matches."""
        bolt.shortcut(re.compile(".*"))(self._on_shortcut)
        bolt.view_submission(re.compile("^" + re.escape(PICK_PREFIX)))(self._on_pick)

    async def _on_shortcut(self, ack: Ack, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        if body.get("type") == "message_action":
            self.adapter._later(self._message(body, client), "slack shortcut")
        else:
            self.adapter._later(self._ask_who(body, client), "slack shortcut")

    # -- message shortcuts ---------------------------------------------------------------------

    async def _message(self, body: dict[str, Any], client: AsyncWebClient) -> None:
        """The trigger id expires 3 s after the click. When the core answers well before (as it
        nearly always does), its form opens with it; when it takes longer than the adapter's
        ``ack_seconds`` (2 s), a "One moment…" modal takes the trigger and views.update puts
        the outcome in it (the form, the reply, or the errors)."""
        task = asyncio.ensure_future(self._message_work(body, client))
        await asyncio.wait({task}, timeout=self.adapter.ack_seconds)
        if task.done():
            event, response = task.result()
            await self.adapter._render(event, response, client, body)
            return
        shortcut = self.adapter.app.core.shortcuts.get(str(body.get("callback_id", "")))
        try:
            opened = await client.views_open(
                trigger_id=body.get("trigger_id"), view=waiting_view(shortcut)
            )
        except SlackApiError as exc:
            log.warning("slack: views.open for a slow shortcut failed: %s", exc)
            event, response = await task
            await self.adapter._render(event, response, client, body)  # a reply still goes
            return
        view = dict(opened.get("view") or {})
        event, response = await task
        try:
            follow = forms.outcome_view(view, response, event.origin.channel_id)
        except render.RenderError as exc:
            follow = forms.result_view(view, message(f"Slack cannot show that: {exc}."))
        try:
            await client.views_update(view_id=view.get("id"), view=follow)
        except SlackApiError as exc:  # closed meanwhile: a reply still reaches them
            log.info("slack: views.update after a shortcut failed: %s", exc)
            if isinstance(response, Reply):
                await self.adapter._private(event, response.message, client, body)

    async def _message_work(
        self, body: dict[str, Any], client: AsyncWebClient
    ) -> tuple[ShortcutInvocation, Response]:
        team, domain = team_of(body)
        user = body.get("user") or {}
        who = await self.adapter._actor(team, str(user.get("id")), str(user.get("username", "")))
        channel = body.get("channel") or {}
        channel_id = str(channel.get("id") or "")
        said = body.get("message") or {}
        link = (
            permalink(domain, channel_id, said)
            if domain
            else await self._permalink(client, channel_id, said)
        )
        origin = Origin(
            PLATFORM,
            team,
            f"shortcut:{body.get('trigger_id')}",
            domain,
            channel_id or None,
            str(channel.get("name", "")),
        )
        event = ShortcutInvocation(
            origin,
            who,
            str(body.get("callback_id", "")),
            message_text=readable(str(said.get("text") or "")),
            message_link=link,
            message_author_id=str(said.get("user") or "") or None,
        )
        return event, await self.adapter._handle(event)

    async def _permalink(
        self, client: AsyncWebClient, channel: str, message: dict[str, Any]
    ) -> str:
        try:
            found = await client.chat_getPermalink(channel=channel, message_ts=message.get("ts"))
        except SlackApiError as exc:
            log.info("slack: chat.getPermalink failed: %s", exc)
            return ""
        return str(found.get("permalink") or "")

    # -- user shortcuts ---------------------------------------------------------------------------

    async def _ask_who(self, body: dict[str, Any], client: AsyncWebClient) -> None:
        callback = str(body.get("callback_id", ""))
        shortcut = self.adapter.app.core.shortcuts.get(callback)
        if shortcut is not None:
            view = pick_view(shortcut)
        else:  # declared by an older manifest, its feature gone since
            gone = message("That shortcut no longer does anything here.")
            view = forms.result_view({}, gone)
        try:
            await client.views_open(trigger_id=body.get("trigger_id"), view=view)
        except SlackApiError as exc:
            log.warning("slack: views.open for shortcut %s failed: %s", callback, exc)

    async def _on_pick(self, ack: Ack, body: dict[str, Any], client: AsyncWebClient) -> None:
        """The person was chosen: run the shortcut on them within the view's 3 s."""
        view = body.get("view") or {}
        shortcut_id = str(view.get("callback_id", "")).removeprefix(PICK_PREFIX)
        values = (view.get("state") or {}).get("values") or {}
        target = ((values.get(WHO) or {}).get(WHO) or {}).get("selected_user")
        chosen = (values.get(WHERE) or {}).get(WHERE) or {}
        where = chosen.get("selected_conversation")
        answer = dict(body)
        for url in body.get("response_urls") or []:
            if url.get("block_id") == WHERE and url.get("response_url"):
                answer["response_url"] = url["response_url"]
                where = url.get("channel_id") or where
        await self.adapter._answer_view(
            ack, answer, client, self._pick_work(answer, shortcut_id, target, where)
        )

    async def _pick_work(
        self, body: dict[str, Any], shortcut_id: str, target: Any, channel: Any
    ) -> tuple[InboundEvent, Response]:
        team, domain = team_of(body)
        user = body.get("user") or {}
        who = await self.adapter._actor(team, str(user.get("id")), str(user.get("username", "")))
        origin = Origin(
            PLATFORM, team, f"shortcut:{body.get('trigger_id')}", domain, channel or None
        )
        event = ShortcutInvocation(
            origin, who, shortcut_id, target_user_id=str(target) if target else None
        )
        return event, await self.adapter._handle(event)


def waiting_view(shortcut: Shortcut | None) -> dict[str, Any]:
    """What a slow shortcut's modal shows until the core has answered (no submit button)."""
    title = shortcut.label if shortcut is not None else "syncup"
    return {
        "type": "modal",
        "callback_id": forms.CHECKING,
        "title": {"type": "plain_text", "text": render.shorten(title, render.MAX_TITLE)},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": ":hourglass_flowing_sand: One moment\u2026"},
            }
        ],
    }


def pick_view(shortcut: Shortcut) -> dict[str, Any]:
    """The modal a user shortcut opens on Slack: who (required) and where (the conversation it
    was opened from; its ``response_url`` carries the private reply)."""
    return {
        "type": "modal",
        "callback_id": PICK_PREFIX + shortcut.shortcut_id,
        "title": {"type": "plain_text", "text": render.shorten(shortcut.label, render.MAX_TITLE)},
        "submit": {"type": "plain_text", "text": "Next"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": WHO,
                "label": {"type": "plain_text", "text": "Who?"},
                "element": {"type": "users_select", "action_id": WHO},
            },
            {
                "type": "input",
                "block_id": WHERE,
                "label": {"type": "plain_text", "text": "Where"},
                "hint": {
                    "type": "plain_text",
                    "text": "Where syncup answers you (only you see it).",
                },
                "element": {
                    "type": "conversations_select",
                    "action_id": WHERE,
                    "default_to_current_conversation": True,
                    "response_url_enabled": True,
                },
            },
        ],
    }


__all__ = ["PICK_PREFIX", "SlackShortcuts", "manifest_entries", "pick_view", "readable"]
