"""Weekly leadership digests: standups, blockers, pulse, kudos and the signals between them,
per team, posted once a week to a channel and to leaders by DM."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core import Core
    from bot.scheduling.scheduler import Scheduler


def register(core: Core, scheduler: Scheduler, base_url: Callable[[], str]) -> None:
    """Add /digest and the weekly schedule; ``base_url()`` is ``[web] public_url`` ("" for
    no dashboard links)."""
    from bot.features.digest import commands
    from bot.features.digest.runtime import DigestRuntime

    commands.register(core, base_url)
    DigestRuntime(base_url).register(scheduler)
