"""Polls on Discord, end to end: the real app and the real discord.py client against the fake
Discord on 127.0.0.1, on SQLite and PostgreSQL.

``/poll create`` with its ``line`` option and through its form in two modal steps; votes as
component clicks (a repeated interaction id counted once), a menu of 25 options and 26 refused
with Discord's limit, a multi-select; live results, and the rule that Discord does not let a bot
edit a message older than an hour: the fake runs on the app's demo clock and refuses such edits
(30046), so a live poll that old gets a new results message, which later updates edit; the
results message with its chart as a PNG attachment; interactions acknowledged within Discord's
deadline (deferred first when the core is slow); ``allowed_mentions`` that ping nobody.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from adapters.console.clock import DemoClock
from bot.features.polls import live
from storage.db import Database
from storage.polls import Poll, PollBallot
from tests.fakes.discord.harness import RunningBot, running
from tests.fakes.discord.server import (
    OLD_MESSAGE_EDITS,
    FakeDiscord,
    FakeGuild,
    Interaction,
    snowflake_time,
)

# Monday 9 March 2026, 09:00 UTC.
START = datetime(2026, 3, 9, 9, tzinfo=UTC)
NAMES = ("alice", "bob", "carol", "dave", "erin")
NOBODY = {"parse": [], "users": [], "replied_user": False}
SHORT_LIVE_DELAY = 0.05


@dataclass
class World:
    fake: FakeDiscord
    guild: FakeGuild
    users: dict[str, str]  # name -> user id
    db_url: str
    database: Database
    clock: DemoClock

    @property
    def team(self) -> str:
        return self.fake.channel_id(self.guild, "team")

    @contextlib.asynccontextmanager
    async def bot(self, **options: Any) -> AsyncIterator[RunningBot]:
        async with running(
            self.fake, self.db_url, self.clock, members_intent=True, **options
        ) as bot:
            # Live results wait 1.5 s for more votes in production; these tests vote one at a
            # time and are not about the debounce (tests/test_slack_polls.py has that).
            live.install(bot.app.core).delay = SHORT_LIVE_DELAY
            yield bot


@pytest.fixture
async def world(database: Database, db_url: str) -> AsyncIterator[World]:
    clock = DemoClock(START)
    # Messages carry the demo clock's time; edits of those older than an hour are refused.
    fake = await FakeDiscord(clock=clock.now, edit_window=timedelta(hours=1)).start()
    users = {name: fake.add_user(name) for name in NAMES}
    guild = fake.add_guild("Acme", ["team", "random"], list(users.values()))
    try:
        yield World(fake, guild, users, db_url, database, clock)
    finally:
        await fake.stop()


# -- helpers -----------------------------------------------------------------------------------


async def poll_command(world: World, by: str, line: str | None = None) -> Interaction:
    options = {"line": line} if line is not None else {}
    return await world.fake.slash(
        "poll",
        "create",
        options,
        user_id=world.users[by],
        guild=world.guild,
        channel="team",
        admin=by == "alice",
    )


async def private(world: World, interaction: Interaction, bot: RunningBot) -> str:
    """The private message the member was answered with (after a defer too)."""
    await bot.settle()
    reply = await world.fake.settled_reply(interaction)
    assert reply["type"] == 4, reply
    first = interaction.responses[0]
    assert first.get("data", {}).get("flags") == 64 or first["type"] == 5, first
    return str(reply["data"]["content"])


def posts(world: World) -> list[dict[str, Any]]:
    """The bot's messages in #team, as they are now (edits applied)."""
    return world.fake.created_messages(world.team)


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """label -> custom_id of the message's buttons."""
    return {
        item["label"]: item["custom_id"]
        for row in message.get("components") or []
        for item in row["components"]
        if item["type"] == 2
    }


def menus(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        item
        for row in message.get("components") or []
        for item in row["components"]
        if item["type"] == 3
    ]


async def vote(
    world: World,
    bot: RunningBot,
    message: dict[str, Any],
    by: str,
    label: str | None = None,
    values: list[str] | None = None,
) -> str:
    if values is None:
        assert label is not None
        clicked = await world.fake.click(message, buttons(message)[label], user_id=world.users[by])
    else:
        [menu] = menus(message)
        clicked = await world.fake.click(
            message, menu["custom_id"], user_id=world.users[by], values=values
        )
    return await private(world, clicked, bot)


def message_calls(world: World, method: str, message_id: str | None = None) -> list[Any]:
    """The bot's REST calls that create (POST) or edit (PATCH) messages in #team."""
    prefix = f"/channels/{world.team}/messages"
    return [
        c
        for c in world.fake.calls
        if c.method == method
        and c.path.startswith(prefix)
        and (message_id is None or c.path == f"{prefix}/{message_id}")
        and not c.path.endswith("/threads")
    ]


def png_of(world: World, attachment: dict[str, Any]) -> bytes:
    data = world.fake.attachment_data[attachment["id"]]
    Image.open(io.BytesIO(data)).verify()
    assert attachment["filename"].endswith(".png")
    return data


def old_edits_refused(world: World) -> list[Any]:
    return [
        c
        for c in world.fake.calls
        if isinstance(c.response, dict) and c.response.get("code") == OLD_MESSAGE_EDITS
    ]


def mentions_are_off(world: World) -> None:
    """Every message and edit the bot sent pings nobody (invariant 5)."""
    sent = [
        c.json
        for c in world.fake.calls
        if c.method in ("POST", "PATCH") and "/messages" in c.path and isinstance(c.json, dict)
    ]
    # Private answers too (interaction responses with a message).
    sent += [
        c.json["data"]
        for c in world.fake.calls
        if c.path.endswith("/callback") and c.json["type"] == 4
    ]
    assert sent
    for payload in sent:
        assert payload["allowed_mentions"] == NOBODY, payload


async def ballots(database: Database, poll_id: int) -> list[PollBallot]:
    async with database.transaction() as session:
        return list(await session.scalars(select(PollBallot).where(PollBallot.poll_id == poll_id)))


# -- one line: buttons, votes, a repeated interaction, the results with their PNG ----------------


async def test_a_poll_from_one_line_on_discord(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        created = await poll_command(
            world, "alice", '"Ship Friday? @everyone" "Yes" "No" --closes 2d --threshold 3'
        )
        assert (await fake.answered(created))["type"] == 4  # answered at once, privately
        said = await private(world, created, bot)
        assert said.startswith("Poll #1 is up in #team; it closes Wed 11 Mar 2026 09:00 (UTC).")
        [poll] = posts(world)
        assert "### Poll #1" in poll["content"]
        assert "Ship Friday? @\u200beveryone" in poll["content"]  # shown, pings nobody
        [row] = poll["components"]
        assert [b["label"] for b in row["components"]] == ["Yes", "No"]
        # Its id and timestamp are the demo clock's time, as Discord's would be.
        stamped = datetime.fromisoformat(poll["timestamp"])
        assert START <= stamped < START + timedelta(minutes=1)
        assert abs(snowflake_time(poll["id"]) - stamped) < timedelta(milliseconds=1)

        for name, label in (("alice", "Yes"), ("bob", "No"), ("carol", "Yes")):
            said = await vote(world, bot, poll, name, label)
            assert said == f"Your vote is in: {label}. You can change it until the poll closes."
        # The same interaction delivered twice (a gateway replay) is answered and counted once.
        dave = world.users["dave"]
        twice = await fake.click(poll, buttons(poll)["No"], user_id=dave, interaction_id="4242")
        await fake.click(poll, buttons(poll)["No"], user_id=dave, interaction_id="4242")
        assert (await private(world, twice, bot)).startswith("Your vote is in: No.")
        assert len(fake.calls_to("POST", "/interactions/4242/")) == 1
        # A vote again replaces the earlier one.
        said = await vote(world, bot, poll, "bob", "Yes")
        assert said.startswith("Your vote is changed to Yes.")
        assert sorted(b.choice for b in await ballots(world.database, 1)) == [0, 0, 0, 1]

        # Live results on the poll's own message, edited in place within the hour.
        poll = fake.messages[poll["id"]]
        assert "75% (3)" in poll["content"] and "25% (1)" in poll["content"]
        assert message_calls(world, "PATCH", poll["id"])
        assert buttons(poll).keys() == {"Yes", "No"}  # the controls stay

        # The deadline: the results, with the chart as a PNG attached to the same message.
        await bot.move_to(START + timedelta(days=2, minutes=1))
        [results] = [m for m in posts(world) if "Poll #1 results" in m["content"]]
        assert "75% (3)" in results["content"] and "4 of 5 answered" in results["content"]
        [attachment] = results["attachments"]
        png_of(world, attachment)
        assert attachment["description"].startswith("Bar chart of the answers to Ship Friday?")
        [embed] = [e for e in results["embeds"] if "image" in e]
        assert embed["image"]["url"] == f"attachment://{attachment['filename']}"
        [sent] = [c for c in message_calls(world, "POST") if c.response["id"] == results["id"]]
        assert sent.multipart and [f.filename for f in sent.files] == [attachment["filename"]]
        # The poll's message is two days old: Discord would refuse the edit, so it is left.
        assert "(closed)" not in fake.messages[poll["id"]]["content"]
        assert old_edits_refused(world) == []

        said = await vote(world, bot, poll, "erin", "No")
        assert said == "Poll #1 closed Wed 11 Mar 2026 09:00 (UTC); votes are no longer taken."
        assert len(await ballots(world.database, 1)) == 4
        mentions_are_off(world)


# -- menus: up to 25 options, 26 refused, multiple choice ---------------------------------------


async def test_menus_of_up_to_25_options_on_discord(world: World) -> None:
    async with world.bot() as bot:
        many = " ".join(f"o{n}" for n in range(1, 27))
        refused = await poll_command(world, "bob", f'"Pick one?" {many}')
        said = await private(world, refused, bot)
        assert said == "Discord can show at most 25 options in one poll; you gave 26."
        assert posts(world) == []
        async with world.database.transaction() as session:
            assert await session.scalar(select(func.count()).select_from(Poll)) == 0

        options = " ".join(f"o{n}" for n in range(1, 26))
        await private(world, await poll_command(world, "bob", f'"Pick one?" {options}'), bot)
        [poll] = posts(world)
        [menu] = menus(poll)
        assert len(menu["options"]) == 25
        assert (menu["min_values"], menu["max_values"]) == (1, 1)
        said = await vote(world, bot, poll, "alice", values=["24"])
        assert said.startswith("Your vote is in: o25.")

        await private(
            world,
            await poll_command(world, "carol", '"Lunch?" Pizza Sushi Tacos Salad --multiple 2'),
            bot,
        )
        lunch = posts(world)[-1]
        [menu] = menus(lunch)
        assert (menu["min_values"], menu["max_values"]) == (1, 2)
        assert menu["placeholder"] == "Choose up to 2"
        said = await vote(world, bot, lunch, "alice", values=["0", "2"])
        assert said.startswith("Your vote is in: Pizza, Tacos.")
        said = await vote(world, bot, lunch, "alice", values=["3"])
        assert said.startswith("Your vote is changed to Salad.")
        assert [b.choice for b in await ballots(world.database, 2)] == [3]
        mentions_are_off(world)


# -- the form, in two modal steps --------------------------------------------------------------


async def test_the_poll_form_in_two_steps_on_discord(world: World) -> None:
    fake = world.fake
    bob = world.users["bob"]
    async with world.bot() as bot:
        opened = await poll_command(world, "bob")
        first = await fake.answered(opened)
        assert first["type"] == 9  # a modal, as the initial response
        modal = first["data"]
        assert modal["title"] == "New poll (1/2)"
        ids = [c["component"]["custom_id"] for c in modal["components"]]
        assert ids == ["question", "kind", "options", "max_choices", "anonymous"]
        step = await fake.submit(
            modal,
            {"question": "Team dinner?", "kind": "single", "options": "Tuesday | Thursday"},
            user_id=bob,
            guild=world.guild,
            channel_id=world.team,
        )
        saved = await fake.answered(step)
        assert saved["type"] == 4 and saved["data"]["flags"] == 64
        assert "step 1 of 2 saved" in saved["data"]["content"]
        shown = fake.reply_message(step)
        go_on = await fake.click(shown, buttons(shown)["Continue (2/2)"], user_id=bob)
        modal = (await fake.answered(go_on))["data"]
        assert modal["title"] == "New poll (2/2)"
        ids = [c["component"]["custom_id"] for c in modal["components"]]
        assert ids == ["results", "closes", "threshold"]
        # A threshold under 3: the errors, privately, and a Fix button for that field only.
        step = await fake.submit(
            modal,
            {"closes": "3h", "threshold": "2"},
            user_id=bob,
            guild=world.guild,
            channel_id=world.team,
        )
        said = await private(world, step, bot)
        assert "Please fix:" in said and "can't be below 3" in said
        assert posts(world) == []
        fix = await fake.click(
            fake.reply_message(step),
            buttons(fake.reply_message(step))["Fix (1 field)"],
            user_id=bob,
        )
        modal = (await fake.answered(fix))["data"]
        assert [c["component"]["custom_id"] for c in modal["components"]] == ["threshold"]
        done = await fake.submit(
            modal, {"threshold": "3"}, user_id=bob, guild=world.guild, channel_id=world.team
        )
        said = await private(world, done, bot)
        assert said.startswith("Poll #1 is up in #team; it closes Mon 9 Mar 2026 12:00 (UTC).")
        [poll] = posts(world)
        assert "Team dinner?" in poll["content"]
        assert list(buttons(poll)) == ["Tuesday", "Thursday"]
        mentions_are_off(world)


# -- live results and the one-hour edit rule ---------------------------------------------------


async def test_a_live_poll_older_than_an_hour_gets_a_new_results_message(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await private(
            world, await poll_command(world, "alice", '"Lunch?" Pizza Sushi --threshold 3'), bot
        )
        [original] = posts(world)
        for name, label in (("alice", "Pizza"), ("bob", "Sushi"), ("carol", "Pizza")):
            await vote(world, bot, original, name, label)
        # Within the hour: the poll's own message is edited, its chart replaced with it.
        original = fake.messages[original["id"]]
        assert "67% (2)" in original["content"] and "33% (1)" in original["content"]
        edits = message_calls(world, "PATCH", original["id"])
        assert edits and all(c.status == 200 for c in edits)
        [chart] = original["attachments"]
        png_of(world, chart)

        # An hour and a minute later: Discord would refuse the edit, so the poll is posted
        # again with its controls and the current results, and that message is edited from now.
        await bot.move_to(START + timedelta(hours=1, minutes=1))
        await vote(world, bot, original, "dave", "Sushi")
        assert len(message_calls(world, "PATCH", original["id"])) == len(edits)
        assert old_edits_refused(world) == []
        first, second = posts(world)
        assert first["id"] == original["id"]
        assert "50% (2)" in second["content"] and "4 of 5 answered" in second["content"]
        assert buttons(second).keys() == {"Pizza", "Sushi"}
        [chart] = second["attachments"]
        png_of(world, chart)
        assert snowflake_time(second["id"]) - snowflake_time(first["id"]) >= timedelta(hours=1)
        [posted] = [c for c in message_calls(world, "POST") if c.response["id"] == second["id"]]
        assert posted.multipart and posted.json["allowed_mentions"] == NOBODY

        # Twenty minutes later the new message is young enough: its controls edit it in place
        # (a vote from the old message's buttons counts the same).
        await bot.move_to(START + timedelta(hours=1, minutes=21))
        await vote(world, bot, second, "erin", "Pizza")
        await vote(world, bot, original, "dave", "Pizza")
        assert len(posts(world)) == 2
        second = fake.messages[second["id"]]
        assert "80% (4)" in second["content"] and "5 of 5 answered" in second["content"]
        assert message_calls(world, "PATCH", second["id"])
        assert len(message_calls(world, "PATCH", original["id"])) == len(edits)

        # Closed by hand: the results (with their PNG); the young message is marked closed,
        # the old one is left as it is.
        closed = await fake.slash(
            "poll",
            "close",
            {"id": "1"},
            user_id=world.users["alice"],
            guild=world.guild,
            channel="team",
            admin=True,
        )
        said = await private(world, closed, bot)
        assert said == "Closed poll #1; the results are posted in its channel."
        results = posts(world)[-1]
        assert "Poll #1 results" in results["content"] and "80% (4)" in results["content"]
        png_of(world, results["attachments"][0])
        assert "(closed)" in fake.messages[second["id"]]["content"]
        assert menus(fake.messages[second["id"]]) == [] and not buttons(fake.messages[second["id"]])
        assert "(closed)" not in fake.messages[original["id"]]["content"]
        assert old_edits_refused(world) == []
        mentions_are_off(world)


# -- the interaction deadline ------------------------------------------------------------------


async def test_votes_are_acknowledged_within_the_deadline(world: World) -> None:
    fake = world.fake
    fake.ack_deadline = 3.0  # Discord's: a later first response is 10062 Unknown interaction
    # ack_seconds=0: the adapter defers before the core has answered, as when the database is
    # slow; the answer then edits the deferred reply.
    async with world.bot(ack_seconds=0.0) as bot:
        created = await poll_command(world, "alice", '"Ship?" Yes No --threshold 3')
        assert (await fake.answered(created)) == {"type": 5, "data": {"flags": 64}}
        said = await private(world, created, bot)
        assert said.startswith("Poll #1 is up in #team")
        [poll] = posts(world)
        clicks = []
        for name in ("alice", "bob", "carol"):
            clicks.append(await fake.click(poll, buttons(poll)["Yes"], user_id=world.users[name]))
        for click in clicks:
            assert (await fake.answered(click))["type"] == 5
            assert (await private(world, click, bot)).startswith("Your vote is in: Yes.")
        callbacks = [c for c in fake.calls if c.path.endswith("/callback")]
        assert len(callbacks) == 4 and {c.status for c in callbacks} == {204}
        assert len(await ballots(world.database, 1)) == 3
    # With the adapter's own race (2 s, under Discord's 3): a core that answers in time answers
    # in the first response itself (type 4); a slower one would be deferred (type 5) in time.
    async with world.bot(ack_seconds=2.0) as bot:
        click = await fake.click(poll, buttons(poll)["No"], user_id=world.users["dave"])
        first = await fake.answered(click)
        assert first["type"] in (4, 5) and first["data"]["flags"] == 64
        assert (await private(world, click, bot)).startswith("Your vote is in: No.")
        assert [c.status for c in fake.calls if c.path.endswith("/callback")][-1] == 204
