"""Outbound webhooks: per-workspace endpoints that hear of blocker changes (and, later, other
events), signed as Standard Webhooks say or in PagerDuty Events API v2 format, sent through the
outbox by the delivery worker (see docs/webhooks.md).

Modules: ``events`` (types, filter, payload schema), ``dispatch`` (the timeline listener and
:func:`~bot.webhooks.dispatch.queue_event`), ``formats`` (signing, PagerDuty bodies),
``targets`` (URL checks, the private-address guard), ``keys`` (the key secrets are encrypted
with), ``sender`` and ``port`` (sending rows), ``service`` and ``commands`` (``/raci webhook``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.webhooks.targets import Resolver, system_resolver

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.core import Core
    from bot.webhooks.keys import Keys


def register(
    core: Core,
    settings: Settings,
    *,
    keys: Keys | None = None,
    resolver: Resolver = system_resolver,
) -> None:
    """Add ``/raci webhook`` to ``/raci`` (registered before, by the RACI feature) and the
    blocker timeline listener."""
    from bot.features.blockers import timeline
    from bot.webhooks import commands
    from bot.webhooks.dispatch import on_blocker_change
    from bot.webhooks.keys import Keys

    timeline.listen(on_blocker_change)
    handlers = commands.handlers(settings.webhooks, keys or Keys(settings), resolver)
    core.extend_command("raci", (commands.WEBHOOK,), handlers)
