"""A long standup answer on Discord: split over several messages in the report's thread, then
edited shorter and longer again. The thread always shows the current answer exactly once (the
parts that remain edited, the extra ones deleted, new ones posted), and the thread is named after
the report, not after the first answer. The real app and discord.py against the fake Discord."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from adapters.discord.port import thread_name
from adapters.discord.render import escape
from tests.fakes.discord.harness import RunningBot, running
from tests.test_discord_standup import (  # noqa: F401 - the ``world`` fixture
    NINE_IN_BERLIN,
    World,
    answered,
    dm_prompt,
    press,
    setup_daily,
    world,
)

WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor"


def long_text(tag: str, chars: int = 2900) -> str:
    text = tag
    while len(text) < chars:
        text += " " + WORDS
    return text[:chars]


def shown(message: dict[str, Any]) -> str:
    parts = [message.get("content") or ""]
    parts += [e.get("description") or "" for e in message.get("embeds") or []]
    return "\n".join(parts)


def thread_of_report(w: World) -> str:
    threads = [t for t, parent in w.fake.threads.items() if parent == w.team]
    assert len(threads) == 1, w.fake.threads
    return threads[0]


def in_thread(w: World, thread: str) -> list[dict[str, Any]]:
    found = [m for m in w.fake.messages.values() if m["channel_id"] == thread]
    return sorted(found, key=lambda m: int(m["id"]))


@asynccontextmanager
async def standup_day(w: World) -> AsyncIterator[tuple[RunningBot, dict[str, Any]]]:
    """The "Daily" standup set up, and 09:00 in Berlin: the bot and alice's prompt."""
    async with running(w.fake, w.db_url, w.clock, members_intent=True) as bot:
        await setup_daily(w, bot)
        await bot.move_to(NINE_IN_BERLIN)
        yield bot, await dm_prompt(w, w.alice)


async def answer(w: World, prompt: dict[str, Any], values: dict[str, str]) -> None:
    click = await press(w, prompt, "Answer", w.alice)
    modal = (await answered(w, click))["data"]
    submitted = await w.fake.submit(modal, values, user_id=w.alice, guild=None)
    assert (await answered(w, submitted))["data"]["flags"] == 64


async def test_the_report_thread_is_named_after_the_report(
    world: World,  # noqa: F811 - the fixture imported above
) -> None:
    fake = world.fake
    async with standup_day(world) as (bot, prompt):
        await answer(world, prompt, {"q0": "Shipped the login page", "q1": "x", "q2": "no"})
        await bot.settle()
        name = fake.thread_names[thread_of_report(world)]
        assert "Daily" in name and "Shipped" not in name and "alice" not in name, name


async def test_a_long_answer_edited_shorter_and_longer_shows_once(
    world: World,  # noqa: F811 - the fixture imported above
) -> None:
    fake = world.fake
    async with standup_day(world) as (bot, prompt):
        first = {"q0": long_text("FIRST-A"), "q1": long_text("FIRST-B"), "q2": long_text("C")}
        await answer(world, prompt, first)
        await bot.settle()
        thread = thread_of_report(world)
        parts = in_thread(world, thread)  # alice's answer is the only reply so far
        assert len(parts) >= 3, [shown(m)[:40] for m in in_thread(world, thread)]
        everything = "".join(shown(m) for m in parts)
        assert "FIRST-A" in everything and "FIRST-B" in everything

        # Edited shorter: one message left, with the new answer; the old parts are gone.
        await answer(world, prompt, {"q0": "SHORT-A", "q1": "SHORT-B", "q2": "none"})
        await bot.settle()
        messages = in_thread(world, thread)
        texts = [shown(m) for m in messages]
        assert not [t for t in texts if "FIRST" in t or "lorem" in t], texts
        assert len([t for t in texts if "SHORT-A" in t]) == 1, texts
        assert {m["id"] for m in parts[1:]} <= set(fake.deleted)
        assert parts[0]["id"] in {m["id"] for m in messages}  # the first part was edited

        # Edited longer again: every part shows, once each, and nothing of the short one.
        again = {"q0": long_text("AGAIN-A"), "q1": long_text("AGAIN-B"), "q2": "none"}
        await answer(world, prompt, again)
        await bot.settle()
        texts = [shown(m) for m in in_thread(world, thread)]
        assert not [t for t in texts if "SHORT" in t], texts
        assert len([t for t in texts if "AGAIN-A" in t]) == 1
        assert len([t for t in texts if "AGAIN-B" in t]) == 1
        joined = "".join(texts)
        assert joined.count(long_text("AGAIN-B")[:1500]) == 1


def test_a_thread_name_is_the_first_line_of_the_message_as_plain_text() -> None:
    header = "### " + escape("Eng_daily *ops* · Mon 9 Mar 2026")
    assert thread_name({"content": header + "\n2 of 3 answered"}) == (
        "Eng_daily *ops* · Mon 9 Mar 2026"
    )
    assert thread_name({"content": "", "embeds": [{"title": "**Pulse** · week 11"}]}) == (
        "Pulse · week 11"
    )
    assert thread_name({"content": "x" * 300}) == "x" * 100  # Discord's limit
    assert thread_name(None) == "Replies"
