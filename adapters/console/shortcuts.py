"""Shortcuts on the console: what Slack's message shortcuts and Discord's Apps menus do, typed.

- ``/say TEXT`` posts TEXT in #team as the member you are acting as: a numbered message on
  screen (``#5 @bob → #team:``), the kind of message a shortcut such as "Report as blocker" is
  meant for. The bot does not read it (it reads no channel messages on any platform).
- ``/shortcut`` lists the shortcuts the features offer; ``/shortcut NAME #5`` runs a message
  shortcut on message #5 on screen (yours from ``/say``, a teammate's, or one of the bot's),
  ``/shortcut NAME @bob`` a member shortcut on @bob. NAME is the shortcut's id
  (``report_blocker``) or its label (``Report as blocker``), in any case.

The message's text, its author and a link (``console://team/5``: the console has no URLs, the
message number stands in for one) go to the core as a :class:`~bot.events.ShortcutInvocation`,
exactly as the Slack and Discord adapters send them, and the answer is shown like a command's:
a form to fill in, or a private reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from adapters.console.demo import CHANNEL_ID, MEMBERS_BY_ID
from adapters.console.render import heading
from bot.chat import message
from bot.core import Shortcut

if TYPE_CHECKING:
    from adapters.console.adapter import ConsoleAdapter

USAGE = (
    "Usage: /shortcut NAME #5 runs a message shortcut on message #5 on screen; "
    "/shortcut NAME @bob runs a member shortcut on @bob; /shortcut alone lists them."
)


@dataclass(frozen=True)
class Shown:
    """A numbered message on screen, as a shortcut sees it."""

    number: int
    channel_id: str
    text: str
    author_id: str | None  # None: the bot's own message
    visible_to: str | None  # a DM: only its member sees it


def link_of(shown: Shown) -> str:
    return f"console://{shown.channel_id}/{shown.number}"


def find(shortcuts: dict[str, Shortcut], name: str) -> Shortcut | None:
    wanted = " ".join(name.split()).lower()
    for shortcut in shortcuts.values():
        if wanted in (shortcut.shortcut_id.lower(), shortcut.label.strip().lower()):
            return shortcut
    return None


def listing(shortcuts: dict[str, Shortcut]) -> list[str]:
    if not shortcuts:
        return ["No feature offers a shortcut yet."]
    lines = ["Shortcuts (run one on a message or a member):"]
    rows = []
    for shortcut in sorted(shortcuts.values(), key=lambda s: (s.on, s.shortcut_id)):
        on_message = shortcut.on == "message"
        usage = f"/shortcut {shortcut.shortcut_id} {'#5' if on_message else '@bob'}"
        rows.append((usage, f"{shortcut.label} (on a {'message' if on_message else 'member'})"))
    width = max(len(usage) for usage, _ in rows)
    lines.extend(f"  {usage.ljust(width)}  {what}" for usage, what in rows)
    lines.append("#5 is the number of a message on screen; /say TEXT posts one in #team.")
    return lines


class ConsoleShortcuts:
    """``/say`` and ``/shortcut`` of one console."""

    def __init__(self, console: ConsoleAdapter) -> None:
        self.console = console

    def say(self, text: str) -> None:
        console = self.console
        if not text:
            console.terminal.say("Usage: /say TEXT posts TEXT in #team as you (for /shortcut).")
            return
        user = console.acting.user_id
        number = console.console_port.number_member_post(CHANNEL_ID, user, text)
        where = console.screen.where(CHANNEL_ID)
        title = heading(where, number=str(number)).replace(" → ", f" @{user} → ", 1)
        console.screen.show(
            title, message(text), channel_id=CHANNEL_ID, message_id=None, visible_to=None
        )

    async def run(self, arg: str) -> None:
        console = self.console
        shortcuts = console.app.core.shortcuts
        name, _, target = arg.rpartition(" ")
        if not arg:
            console.terminal.say(*listing(shortcuts))
            return
        if not name or not target.startswith(("#", "@")):
            console.terminal.say(USAGE)
            return
        shortcut = find(shortcuts, name)
        if shortcut is None:
            known = ", ".join(sorted(shortcuts)) or "none yet"
            console.terminal.say(
                f'No shortcut "{name}". Shortcuts: {known} (/shortcut lists them).'
            )
            return
        if shortcut.on == "message":
            await self._on_message(shortcut, target)
        else:
            await self._on_member(shortcut, target)

    async def _on_message(self, shortcut: Shortcut, target: str) -> None:
        console = self.console
        if not target.startswith("#") or not target[1:].isdigit():
            console.terminal.say(
                f"{shortcut.shortcut_id} runs on a message: /shortcut {shortcut.shortcut_id} #5, "
                "where 5 is the number of a message on screen."
            )
            return
        shown = console.console_port.shown.get(int(target[1:]))
        if shown is None:
            console.terminal.say(f"There is no message {target} on screen.")
            return
        if shown.visible_to is not None and shown.visible_to != console.acting.user_id:
            console.terminal.say(
                f"Message {target} is a DM only @{shown.visible_to} can see; "
                f"type /as {shown.visible_to} first."
            )
            return
        await console.shortcut(
            shortcut.shortcut_id,
            shown.channel_id,
            message_text=shown.text,
            message_link=link_of(shown),
            message_author_id=shown.author_id,
        )

    async def _on_member(self, shortcut: Shortcut, target: str) -> None:
        console = self.console
        user = target[1:].lower()
        if not target.startswith("@") or user not in MEMBERS_BY_ID:
            members = ", ".join(f"@{m}" for m in MEMBERS_BY_ID)
            console.terminal.say(
                f"{shortcut.shortcut_id} runs on a member: /shortcut {shortcut.shortcut_id} @bob "
                f"(members: {members})."
            )
            return
        await console.shortcut(shortcut.shortcut_id, CHANNEL_ID, target_user_id=user)


def shown_text(lines: list[str]) -> str:
    """A bot message's text as printed (the renderer's lines, without their indent)."""
    return "\n".join(line.strip() for line in lines).strip()


__all__ = ["ConsoleShortcuts", "Shown", "shown_text"]
