"""Inbound webhooks (``/hooks/{source}/{token}``) that turn shipped work into celebrations.

Modules: ``sources`` (each sender's signature scheme and events), ``templates`` (safe
placeholders), ``service`` (hooks and rules in storage; what a delivery does; the milestone hook
point :data:`~bot.features.hooks.service.MILESTONE_DONE`), ``receiver`` (the ASGI endpoint),
``commands`` (``/milestone hook ...``; ``/milestone`` is registered here for the milestones
feature to extend). See docs/webhooks-inbound.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core import Core
    from bot.features.hooks.receiver import HookReceiver
    from bot.webhooks.keys import Keys
    from storage.db import Database


def register(
    core: Core,
    db: Database,
    keys: Keys,
    *,
    per_minute: int,
    base_url: Callable[[], str],
    wake: Callable[[], None] | None = None,
) -> HookReceiver:
    """Add ``/milestone`` (with ``hook`` and ``help``); returns the endpoint to mount."""
    from bot.features.hooks import commands
    from bot.features.hooks.receiver import HookReceiver

    receiver = HookReceiver(db, core.clock, keys, per_minute, wake)
    commands.register(core, keys, receiver, base_url)
    return receiver
