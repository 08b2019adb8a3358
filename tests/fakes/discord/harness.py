"""Running the real syncup app with the Discord adapter against :class:`FakeDiscord`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from adapters.console.clock import DemoClock, move_clock, settle
from adapters.discord.adapter import DiscordAdapter
from bot.app import App
from bot.config import BotSection, DatabaseSection, DiscordSection, Settings
from tests.fakes.discord.server import FakeDiscord


@dataclass
class RunningBot:
    fake: FakeDiscord
    app: App
    adapter: DiscordAdapter
    task: asyncio.Task[int]
    clock: DemoClock
    baseline: int = 0  # events dispatched before this bot started

    async def settle(self) -> None:
        """Every event the fake dispatched has been handled, and the app is idle."""
        await self.fake.wait_for(
            lambda: self.adapter.handled >= self.fake.inbound - self.baseline,
            patience=20.0,
            what="the bot to handle what was dispatched",
        )
        await self.app.core.idle()
        await settle(self.app, 20.0)

    async def move_to(self, when: datetime) -> None:
        await move_clock(self.app, self.clock, when, settled=self.settle)

    async def stop(self) -> int:
        await self.adapter.stop()
        return await asyncio.wait_for(self.task, 20.0)


def settings_for(fake: FakeDiscord, db_url: str, **discord: Any) -> Settings:
    return Settings(
        bot=BotSection(platform="discord"),
        database=DatabaseSection(url=db_url),
        discord=DiscordSection(
            **{"token": SecretStr(fake.token), "api_base_url": fake.api_base, **discord}
        ),
    )


async def start_bot(
    fake: FakeDiscord,
    db_url: str,
    clock: DemoClock,
    *,
    ack_seconds: float = 15.0,  # tests are about behaviour: never defer by accident
    guilds: int | None = None,
    **discord: Any,
) -> RunningBot:
    """Start the app and wait until the client is ready and its guilds are recorded."""
    settings = settings_for(fake, db_url, **discord)
    baseline = fake.inbound
    adapter = DiscordAdapter(
        settings.discord, clock=clock, ack_seconds=ack_seconds, guild_ready_timeout=0.05
    )
    app = App(settings, adapter)
    task = asyncio.create_task(app.run(), name="syncup under test")
    expected = len(fake.guilds) if guilds is None else guilds
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20.0
    while not (adapter.ready.is_set() and len(adapter.guilds_synced) >= expected):
        if task.done():
            raise AssertionError(f"the bot stopped while connecting: {task.result()!r}")
        if loop.time() > deadline:
            raise AssertionError("the bot did not connect to the fake Discord")
        await asyncio.sleep(0.01)
    return RunningBot(fake, app, adapter, task, clock, baseline)


@contextlib.asynccontextmanager
async def running(
    fake: FakeDiscord, db_url: str, clock: DemoClock, **options: Any
) -> AsyncIterator[RunningBot]:
    bot = await start_bot(fake, db_url, clock, **options)
    try:
        yield bot
    finally:
        if not bot.task.done():
            await bot.stop()
