"""The screen: messages printed with their recipient, and the buttons they carry, by label."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.console.demo import CHANNEL_ID, DEMO_CHANNELS, DEMO_MEMBERS, dm_user
from adapters.console.render import ChartFiles, Control, Renderer
from adapters.console.terminal import Terminal
from bot.chat import Actions, Message

# Message letters: no i, l or o, which read like 1 and 0.
LETTERS = "abcdefghjkmnpqrstuvwxyz"


@dataclass(frozen=True)
class Pressable:
    control: Control
    channel_id: str | None
    message_id: str | None
    # The only member who sees the message (a DM or an ephemeral one); None for channel posts.
    visible_to: str | None


def letter(index: int) -> str:
    """The ``index``-th message letter (from 0): ``a`` ... ``z``, then ``aa``, ``ab`` ..."""
    out = ""
    index += 1
    while index > 0:
        index, rest = divmod(index - 1, len(LETTERS))
        out = LETTERS[rest] + out
    return out


class Screen:
    """Prints messages with their recipient and keeps the buttons they carry, by label: each
    message with buttons gets a letter, its buttons that letter and a number (``b2``). An update
    of a message keeps its letter, so its buttons keep their labels; a label never contains
    only digits, so an answer such as ``3`` is never taken for a button. Writes the pictures of
    charts into ``charts_dir``."""

    def __init__(self, terminal: Terminal, charts_dir: str | None = None) -> None:
        self.terminal = terminal
        self.renderer = Renderer(
            {m.user_id: m.user_id for m in DEMO_MEMBERS},
            {c.channel_id: c.name for c in DEMO_CHANNELS},
            ChartFiles(charts_dir) if charts_dir else None,
        )
        self.controls: dict[str, Pressable] = {}
        self._letters: dict[str, str] = {}
        self._used = 0

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
    ) -> list[str]:
        """Print it; returns its lines as printed (without the title)."""
        if replaces is not None:
            self.controls = {k: p for k, p in self.controls.items() if p.message_id != replaces}
        rendered = self.renderer.message(msg, self._letter(msg, message_id))
        for control in rendered.controls:
            self.controls[control.key] = Pressable(control, channel_id, message_id, visible_to)
        self.terminal.show([title, *rendered.lines])
        return rendered.lines

    def _letter(self, msg: Message, message_id: str | None) -> str:
        """The message's letter: the one it had (an update), else the next unused one; none
        used up for a message without buttons."""
        known = self._letters.get(message_id or "")
        if known is not None:
            return known
        if not any(isinstance(b, Actions) and b.elements for b in msg.blocks):
            return ""
        new = letter(self._used)
        self._used += 1
        if message_id is not None:
            self._letters[message_id] = new
        return new
