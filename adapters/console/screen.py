"""The screen: messages printed with their recipient, and the buttons they carry, by label."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.console.demo import CHANNEL_ID, DEMO_CHANNELS, DEMO_MEMBERS, dm_user
from adapters.console.render import ChartFiles, Control, Renderer
from adapters.console.terminal import Terminal
from bot.chat import Message


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
