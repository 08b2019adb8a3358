"""Polls (and a pulse round) on Slack, end to end: the real slack-bolt app, slack_sdk and the real
App (core, scheduler, outbox, delivery worker) against the fake Slack on 127.0.0.1, on SQLite and
PostgreSQL.

What a member does is sent the way Slack sends it (signed slash commands and interaction
payloads into the HTTP endpoint, or Socket Mode envelopes); what syncup does is read back from
the fake's Web API calls. The fake refuses anything outside Block Kit's limits (``team_slack``
fails a test that sent such a payload), so every poll, update and modal here fits.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apscheduler.triggers.date import DateTrigger
from PIL import Image
from sqlalchemy import func, select

from adapters.slack.events import ClickDebouncer
from adapters.slack.port import chart_filename
from bot.features.polls import live, schedules
from bot.features.standups.schedules import OnceSchedule
from storage.db import Database
from storage.models import OccurrenceClaim
from storage.polls import Poll, PollBallot, PollParticipant, keyed_table
from tests.fakes.slack import blockkit, payloads
from tests.fakes.slack.harness import Ack, SlackWorld, find_button, slack_world, team_slack, text_of
from tests.fakes.slack.server import FakeSlack, Posted

# Monday 9 March 2026, 09:00 UTC (10:00 in Berlin, alice's zone).
START = datetime(2026, 3, 9, 9, tzinfo=UTC)
EXTRA = ("carol", "dave", "erin")
# Live results wait this long for more votes (1.5 s in production): the tests that press one
# button at a time are not about the debounce (test_a_burst_of_votes... is, with the default).
SHORT_LIVE_DELAY = 0.05


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with team_slack() as slack:  # fails the test if anything broke Block Kit's limits
        for name in EXTRA:
            user = f"U{name.upper()}"
            slack.add_user(user, name, "Europe/Berlin")
            slack.channels["CTEAM"].members.add(user)
        yield slack


@pytest.fixture
async def world(fake: FakeSlack, database: Database) -> AsyncIterator[SlackWorld]:
    async with slack_world(fake, database.url, "http", START) as built:
        live.install(built.app.core).delay = SHORT_LIVE_DELAY
        yield built


@pytest.fixture(params=["socket", "http"])
async def either_world(
    request: pytest.FixtureRequest, fake: FakeSlack, database: Database
) -> AsyncIterator[SlackWorld]:
    """The world in Socket Mode, then in HTTP mode (signed requests)."""
    async with slack_world(fake, database.url, request.param, START) as built:
        live.install(built.app.core).delay = SHORT_LIVE_DELAY
        yield built


# -- helpers -----------------------------------------------------------------------------------


def replies(fake: FakeSlack) -> list[str]:
    """What members were told privately (through the response_url), in order."""
    return [text_of(r.get("blocks"), r.get("text", "")) for r in fake.responses]


def ephemeral(fake: FakeSlack) -> str:
    """The latest private reply posted with chat.postEphemeral (to a form submission, which has
    no response_url)."""
    posted = fake.ephemerals[-1]
    return text_of(posted.get("blocks"), posted.get("text", ""))


def last_reply(fake: FakeSlack) -> str:
    response = fake.responses[-1]
    assert response["response_type"] == "ephemeral", response
    return text_of(response.get("blocks"), response.get("text", ""))


def messages(fake: FakeSlack, channel: str = "CTEAM") -> list[Posted]:
    """The bot's messages in a channel, file shares left out."""
    return [p for p in fake.posts(channel) if not p.files]


def updates_of(fake: FakeSlack, posted: Posted) -> list[dict[str, Any]]:
    return [c.args for c in fake.calls_of("chat.update") if c.args.get("ts") == posted.ts]


def elements(posted: Posted, kind: str) -> list[dict[str, Any]]:
    """Every interactive element of ``kind`` in the message (in actions blocks or as section
    accessories)."""
    found: list[dict[str, Any]] = []
    for block in posted.blocks or []:
        if block.get("type") == "actions":
            found += [e for e in block["elements"] if e.get("type") == kind]
        elif block.get("accessory", {}).get("type") == kind:
            found.append(block["accessory"])
    return found


def select_payload(
    fake: FakeSlack, posted: Posted, user: str, menu: dict[str, Any], values: list[str]
) -> dict[str, Any]:
    """The ``block_actions`` Slack sends when ``user`` picks ``values`` in ``menu``."""
    by_value = {o["value"]: o for o in menu["options"]}
    payload = payloads.block_action(
        menu["action_id"],
        user=user,
        channel=posted.channel,
        message_ts=posted.ts,
        response_url=fake.response_url(),
        team=fake.team_id,
    )
    action: dict[str, Any] = {
        "type": menu["type"],
        "action_id": menu["action_id"],
        "block_id": "poll",
        "action_ts": f"{time.time():.6f}",
    }
    if menu["type"] == "multi_static_select":
        action["selected_options"] = [by_value[v] for v in values]
    else:
        [value] = values
        action["selected_option"] = by_value[value]
    payload["actions"] = [action]
    return payload


def click_payload(fake: FakeSlack, posted: Posted, user: str, label: str) -> dict[str, Any]:
    button = find_button(posted, label)
    return payloads.block_action(
        button["action_id"],
        user=user,
        channel=posted.channel,
        message_ts=posted.ts,
        value=button.get("value", ""),
        response_url=fake.response_url(),
        team=fake.team_id,
    )


async def choose(world: SlackWorld, posted: Posted, user: str, values: list[str]) -> Ack:
    [menu] = elements(posted, "static_select") + elements(posted, "multi_static_select")
    ack = await world.send("interactive", select_payload(world.fake, posted, user, menu, values))
    await world.settle()
    return ack


async def ballots(database: Database, poll_id: int) -> list[PollBallot]:
    async with database.transaction() as session:
        return list(await session.scalars(select(PollBallot).where(PollBallot.poll_id == poll_id)))


async def poll_count(database: Database) -> int:
    async with database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(Poll)) or 0)


def no_pings(fake: FakeSlack) -> None:
    """Nothing the bot sent into a channel or a DM notifies anyone (invariant 5)."""
    for call in fake.calls:
        if call.method in ("chat.postMessage", "chat.update"):
            assert blockkit.pings(call.args) == [], call.args
    for response in fake.responses:
        assert blockkit.pings(response) == [], response


def png_ok(data: bytes | None) -> None:
    assert data is not None
    Image.open(io.BytesIO(data)).verify()


# -- a one-line poll: buttons, votes, double clicks, the deadline ------------------------------


async def test_a_one_line_poll_is_voted_on_and_closes_at_its_deadline_once(
    either_world: SlackWorld, database: Database
) -> None:
    world = either_world
    fake = world.fake
    ack = await world.command("UALICE", '/poll "Ship Friday?" "Yes" "No" --closes 2d')
    assert (ack.status, ack.body.get("response_action")) == (200, None)
    assert last_reply(fake).startswith("Poll #1 is up in #team; it closes Wed 11 Mar 2026 10:00")
    [poll] = messages(fake)
    shown = text_of(poll.blocks)
    assert "Poll #1" in shown and "Ship Friday?" in shown
    assert "closes Wed 11 Mar 2026 10:00 (Europe/Berlin)" in shown
    # Two buttons in one actions block, each with its own action id and its choice as value.
    [actions] = [b for b in poll.blocks or [] if b["type"] == "actions"]
    yes, no = actions["elements"]
    assert (yes["text"]["text"], yes["value"], no["text"]["text"], no["value"]) == (
        "Yes",
        "0",
        "No",
        "1",
    )
    assert yes["action_id"] != no["action_id"]
    assert not blockkit.check_message({"blocks": poll.blocks, "text": poll.text})

    # Votes by button clicks, each confirmed privately, none written into the channel.
    for user, label in (("UALICE", "Yes"), ("UBOB", "No"), ("UCAROL", "Yes"), ("UDAVE", "Yes")):
        ack = await world.press(user, poll, label)
        assert ack.status == 200
        assert last_reply(fake).startswith(f"Your vote is in: {label}.")
    assert len(messages(fake)) == 1

    # A double click (two presses a moment apart, each with its own trigger id) counts once.
    before = len(fake.responses)
    first, second = (click_payload(fake, poll, "UERIN", "No") for _ in range(2))
    await asyncio.gather(world.send("interactive", first), world.send("interactive", second))
    await world.settle()
    assert replies(fake)[before:] == [
        "Your vote is in: No. You can change it until the poll closes."
    ]
    # The same press delivered again (Slack's retry of a request it thinks timed out), after
    # the adapter's double-click window: the core has handled that trigger id already.
    ticks = [0.0]
    world.adapter.debouncer = ClickDebouncer(monotonic=lambda: ticks[0])
    retried = click_payload(fake, poll, "UERIN", "Yes")
    assert (await world.send("interactive", retried)).status == 200
    await world.settle()
    ticks[0] += 60.0
    assert (await world.send("interactive", retried, retry=1)).status == 200
    await world.settle()
    assert replies(fake)[before + 1 :] == [
        "Your vote is changed to Yes. You can change it until the poll closes."
    ]
    # Voting again replaces the vote: erin has one ballot, for Yes.
    assert sorted(b.choice for b in await ballots(database, 1)) == [0, 0, 0, 0, 1]

    # Named polls show live results on the poll's own message (5 answers: the threshold).
    assert updates_of(fake, poll)
    live_text = text_of(poll.blocks)
    assert "80% (4)" in live_text and "20% (1)" in live_text
    assert "alice" in live_text and "bob" in live_text
    assert find_button(poll, "No")["action_id"] == no["action_id"]

    # The scheduler closes it at the deadline: one results message, its chart as a PNG file.
    deadline = datetime(2026, 3, 11, 9, tzinfo=UTC)
    close = OnceSchedule(
        "poll:1:close:0",
        schedules.CLOSE_HANDLER,
        DateTrigger(run_date=deadline, timezone=UTC),
        payload={"poll_id": 1, "generation": 0},
    )
    await world.move_to(deadline - timedelta(minutes=1))
    assert len(messages(fake)) == 1
    await world.move_to(deadline + timedelta(minutes=5))
    results = [m for m in messages(fake) if "Poll #1 results" in text_of(m.blocks)]
    assert len(results) == 1
    shown = text_of(results[0].blocks)
    assert "Yes" in shown and "80% (4)" in shown and "No" in shown and "20% (1)" in shown
    assert "5 of 5 answered" in shown
    [chart] = fake.shared_files("CTEAM")
    assert chart.filename == chart_filename("poll:1:close:0:results", 0)
    assert chart.alt_txt and chart.alt_txt.startswith("Bar chart of the answers to Ship Friday?")
    png_ok(chart.data)
    assert "(closed)" in text_of(poll.blocks)
    assert not [b for b in poll.blocks or [] if b["type"] == "actions"]
    async with database.transaction() as session:
        stored = await session.get(Poll, 1)
        assert stored is not None and stored.closed_at is not None
        assert deadline <= stored.closed_at < deadline + timedelta(seconds=30)  # at the deadline
        claims = list(await session.scalars(select(OccurrenceClaim.key)))
    assert "poll:1:close:0" in claims
    # The same occurrence fired again (a second replica, a scheduler that fires twice) does
    # nothing: it was claimed.
    assert await world.app.scheduler.run_occurrence(close, deadline) is False
    await world.move_to(deadline + timedelta(days=1))
    assert len([m for m in messages(fake) if "Poll #1 results" in text_of(m.blocks)]) == 1
    assert len(fake.shared_files()) == 1

    # A press on the closed poll (a client that missed the update) is refused privately.
    first_post = fake.calls_of("chat.postMessage")[0].args
    stale = Posted("CTEAM", poll.ts, "", first_post.get("blocks"), None, fake.team_id)
    await world.press("UBOB", stale, "Yes")
    assert last_reply(fake) == (  # in bob's own zone
        "Poll #1 closed Wed 11 Mar 2026 05:00 (America/New_York); votes are no longer taken."
    )
    assert sorted(b.choice for b in await ballots(database, 1)) == [0, 0, 0, 0, 1]
    no_pings(fake)


# -- the form, menus and multi-selects -------------------------------------------------------


async def test_the_form_and_menu_polls_on_slack(world: SlackWorld, database: Database) -> None:
    fake = world.fake
    # A bare /poll opens the form (views.open with the command's trigger id).
    await world.command("UBOB", "/poll")
    view = fake.views[-1]
    assert view["callback_id"] == "poll-create"
    assert fake.calls_of("views.open")[-1].args["trigger_id"]
    fields = [b["block_id"] for b in view["blocks"] if b["type"] == "input"]
    assert fields == [
        "question",
        "kind",
        "options",
        "max_choices",
        "anonymous",
        "results",
        "closes",
        "threshold",
    ]
    # A wrong field keeps the form open with the error next to it; nothing is saved.
    ack = await world.submit(
        "UBOB",
        {
            "question": "Lunch on Friday?",
            "kind": "multiple",
            "options": "Pizza\nSushi\nTacos\nSalad",
            "max_choices": "2",
            "threshold": "2",
        },
        view,
    )
    errors = world.form_errors(ack)
    assert set(errors) == {"threshold"}
    assert "can't be below 3" in errors["threshold"]
    assert messages(fake) == [] and await poll_count(database) == 0
    # Fixed, it creates a multiple choice poll: a multi-select of at most 2.
    ack = await world.submit(
        "UBOB",
        {
            "question": "Lunch on Friday?",
            "kind": "multiple",
            "options": "Pizza\nSushi\nTacos\nSalad",
            "max_choices": "2",
            "threshold": "3",
        },
        view,
    )
    assert world.form_errors(ack) == {}, ack.body
    await world.settle()
    assert fake.ephemerals[-1]["user"] == "UBOB"
    assert ephemeral(fake).startswith("Poll #1 is up in #team")
    [lunch] = messages(fake)
    [menu] = elements(lunch, "multi_static_select")
    assert menu["max_selected_items"] == 2
    assert [o["text"]["text"] for o in menu["options"]] == ["Pizza", "Sushi", "Tacos", "Salad"]
    assert elements(lunch, "button") == []
    await choose(world, lunch, "UALICE", ["0", "2"])
    assert last_reply(fake).startswith("Your vote is in: Pizza, Tacos.")
    await choose(world, lunch, "UBOB", ["2"])
    await choose(world, lunch, "UALICE", ["3"])  # all of her vote is replaced
    assert last_reply(fake).startswith("Your vote is changed to Salad.")
    assert sorted(b.choice for b in await ballots(database, 1)) == [2, 3]
    # Slack's menu stops at two; a payload with three (forged) is refused, and changes nothing.
    await choose(world, lunch, "UCAROL", ["0", "1", "2"])
    assert last_reply(fake) == "Pick at most 2 options."
    assert sorted(b.choice for b in await ballots(database, 1)) == [2, 3]

    # The same from one line: `--multiple 2`.
    await world.command("UDAVE", '/poll "Topics for Friday?" Roadmap Hiring On-call --multiple 2')
    topics = messages(fake)[-1]
    [menu] = elements(topics, "multi_static_select")
    assert (menu["max_selected_items"], len(menu["options"])) == (2, 3)
    assert menu["placeholder"]["text"] == "Choose up to 2"
    await choose(world, topics, "UERIN", ["2", "0"])
    assert last_reply(fake).startswith("Your vote is in: Roadmap, On-call.")
    assert sorted(b.choice for b in await ballots(database, 2)) == [0, 2]

    # More than five options: a menu (static_select) in an actions block.
    days = " ".join(f'"Day {n}"' for n in range(1, 8))
    await world.command("UCAROL", f'/poll "Offsite day?" {days} --threshold 3')
    offsite = messages(fake)[-1]
    assert "Offsite day?" in text_of(offsite.blocks)
    [menu] = elements(offsite, "static_select")
    assert len(menu["options"]) == 7 and "max_selected_items" not in menu
    [row] = [b for b in offsite.blocks or [] if b["type"] == "actions"]
    assert [e["type"] for e in row["elements"]] == ["static_select"]
    for user, value in (("UALICE", "6"), ("UBOB", "6"), ("UCAROL", "0")):
        await choose(world, offsite, user, [value])
    assert last_reply(fake).startswith("Your vote is in: Day 1.")
    shown = text_of(offsite.blocks)  # live results (3 answers: the threshold here)
    assert "Day 7" in shown and "67% (2)" in shown and "33% (1)" in shown
    # A value that is not an option (a forged payload) is refused privately.
    forged = select_payload(fake, offsite, "UDAVE", menu, ["0"])
    forged["actions"][0]["selected_option"] = {
        "text": {"type": "plain_text", "text": "x"},
        "value": "9",
    }
    await world.send("interactive", forged)
    await world.settle()
    assert last_reply(fake).startswith("That option is not in this poll any more")
    assert len(await ballots(database, 3)) == 3


# -- anonymous polls ---------------------------------------------------------------------------


async def test_an_anonymous_poll_shows_nothing_until_it_closes(
    world: SlackWorld, database: Database
) -> None:
    fake = world.fake
    await world.command("UALICE", '/poll "Honest pace?" --scale --anonymous --threshold 3')
    [poll] = messages(fake)
    assert "Anonymous poll #1" in text_of(poll.blocks)
    assert [b["text"]["text"] for b in elements(poll, "button")] == ["1", "2", "3", "4", "5"]
    for user, value in (("UALICE", "2"), ("UBOB", "4"), ("UCAROL", "4"), ("UDAVE", "5")):
        await world.press(user, poll, value)
        assert "nobody, not even the poll's creator or an admin" in last_reply(fake)
    # No live counts, anywhere: the poll's message is never updated while it is open.
    assert fake.calls_of("chat.update") == []
    await world.command("UALICE", "/poll results 1")
    assert last_reply(fake).startswith("The results of anonymous poll #1 are shown when it closes")
    async with database.transaction() as session:
        assert (
            await session.scalar(
                select(func.count())
                .select_from(PollBallot)
                .where(PollBallot.member_id.is_not(None))
            )
            == 0
        )
    uploads = len(fake.calls_of("files.getUploadURLExternal"))

    await world.command("UALICE", "/poll close 1")
    assert last_reply(fake) == "Closed poll #1; the results are posted in its channel."
    # The close updates the poll's message to say so, still without a count.
    for update in fake.calls_of("chat.update"):
        shown = text_of(update.args.get("blocks"))
        assert "(closed)" in shown and "%" not in shown and "█" not in shown
    [results] = [m for m in messages(fake) if "Poll #1 results" in text_of(m.blocks)]
    shown = text_of(results.blocks)
    assert "Average 3.8 of 5" in shown and "50% (2)" in shown and "4 of 5 answered" in shown
    for name in ("alice", "bob", "carol", "dave", "UALICE", "UBOB"):
        assert name not in shown
    # The chart follows as a PNG, uploaded with files_upload_v2 into the channel.
    assert len(fake.calls_of("files.getUploadURLExternal")) == uploads + 1
    [complete] = fake.calls_of("files.completeUploadExternal")
    assert complete.args["channel_id"] == "CTEAM"
    [chart] = fake.shared_files("CTEAM")
    assert chart.filename.endswith(".png") and chart.share_ts is not None
    assert chart.share_ts > results.ts
    png_ok(chart.data)
    assert chart.alt_txt and "Honest pace?" in chart.alt_txt and "4 of 5 answered" in chart.alt_txt


# -- live results, debounced -------------------------------------------------------------------


async def test_a_burst_of_votes_is_a_few_updates_with_the_right_counts(
    fake: FakeSlack, database: Database
) -> None:
    voters = [f"UV{n:02d}" for n in range(12)]
    for n, user in enumerate(voters):
        fake.add_user(user, f"voter{n:02d}", "UTC")
        fake.channels["CTEAM"].members.add(user)
    async with slack_world(fake, database.url, "http", START) as world:
        await world.command("UALICE", '/poll "Lunch?" Pizza Sushi --results live --threshold 3')
        [poll] = messages(fake)
        for user in voters:  # their profiles are looked up once, before the burst
            await world.adapter.slack_port.profile(fake.team_id, user)
        refresher = live.live_of(world.app.core)
        assert refresher is not None and refresher.delay == live.DEFAULT_DELAY_SECONDS
        refreshes = refresher.refreshes
        clicks = [
            click_payload(fake, poll, user, "Pizza" if n % 3 else "Sushi")
            for n, user in enumerate(voters)
        ]
        acks = await asyncio.gather(*(world.send("interactive", c) for c in clicks))
        assert {a.status for a in acks} == {200}
        await world.settle()
        updates = updates_of(fake, poll)
        # Twelve votes within a moment: far fewer updates of the message (Slack's chat.update
        # is Tier 3), each a refresh of the counts so far.
        assert 1 <= len(updates) <= 4, len(updates)
        assert refresher.refreshes - refreshes == len(updates)
        shown = text_of(poll.blocks)
        assert "67% (8)" in shown and "33% (4)" in shown and "12 of 17 answered" in shown
        assert len(await ballots(database, 1)) == 12


# -- bad input ---------------------------------------------------------------------------------


async def test_bad_input_is_answered_privately_and_nothing_is_saved(
    world: SlackWorld, database: Database
) -> None:
    fake = world.fake
    many = " ".join(f"o{n}" for n in range(101))
    cases = {
        '"Ship Friday?" "Yes"': "A poll needs at least 2 options; you gave 1.",
        '"Ship Friday?" Yes yes': '"Yes" and "yes" are the same option',
        f'"Pick one?" {many}': "Slack can show at most 100 options in one poll; you gave 101.",
        '"Ship?" Yes No --closes 2026-03-01': "is in the past",
        '"Ship?" Yes No --threshold 2': "The threshold can't be below 3",
        '"Ship?" Yes No --anonymous --results live': "Live counts are never shown for anonymous",
        '"Ship?" Yes No --closes someday': 'I can\'t read the deadline "someday"',
    }
    for line, expected in cases.items():
        ack = await world.command("UBOB", f"/poll {line}")
        assert ack.status == 200
        response = fake.responses[-1]
        assert response["response_type"] == "ephemeral"
        assert expected in text_of(response.get("blocks"), response.get("text", "")), line
    assert fake.calls_of("chat.postMessage") == []
    assert fake.calls_of("chat.postEphemeral") == []  # private means the response_url
    assert await poll_count(database) == 0


# -- mentions ----------------------------------------------------------------------------------


async def test_mentions_in_a_poll_ping_nobody(world: SlackWorld) -> None:
    fake = world.fake
    await world.command(
        "UALICE",
        '/poll "Lunch <!channel>?" "@everyone" "<!here>" "<@UBOB> & co" --threshold 3',
    )
    [poll] = messages(fake)
    shown = text_of(poll.blocks)
    assert "Lunch &lt;!channel&gt;?" in shown
    for user in ("UALICE", "UBOB", "UCAROL"):
        await world.press(user, poll, "@everyone")
    await world.press("UDAVE", poll, "<@UBOB> & co")
    await world.command("UALICE", "/poll close 1")
    [results] = [m for m in messages(fake) if "Poll #1 results" in text_of(m.blocks)]
    shown = text_of(results.blocks)
    assert "&lt;!here&gt;" in shown and "&lt;@UBOB&gt; &amp; co" in shown
    assert "@everyone" in shown  # verbatim: shown as typed, parsed as nothing
    no_pings(fake)
    # Every mrkdwn text the bot sent is verbatim (Slack would otherwise parse @everyone).
    for call in fake.calls:
        if call.method in ("chat.postMessage", "chat.update"):
            assert all(verbatim for _, verbatim in blockkit.mrkdwn_texts(call.args))


# -- a pulse round in the DM -------------------------------------------------------------------


async def test_a_pulse_round_dm_takes_a_vote(world: SlackWorld, database: Database) -> None:
    fake = world.fake
    await world.command("UALICE", "/pulse setup")
    assert fake.views[-1]["callback_id"] == "pulse-setup"
    ack = await world.submit(
        "UALICE",
        {
            "team": "Platform",
            "channel": "#team",
            "participants": "@alice @bob @carol",
            "timezone": "Europe/Berlin",
            "threshold": "3",
        },
    )
    assert world.form_errors(ack) == {}, ack.body
    assert "Created the pulse check of *Platform*" in ephemeral(fake)
    await world.command("UALICE", "/pulse run Platform")
    assert last_reply(fake).startswith("Sent a round of the Platform pulse to 3 member(s)")
    [dm] = fake.dms_to("UBOB")
    shown = text_of(dm.blocks)
    assert "Pulse check: Platform" in shown and "nobody, not even an admin" in shown
    # Three questions, each with its 1-5 buttons (one actions block each).
    rows = [b for b in dm.blocks or [] if b["type"] == "actions"]
    assert len(rows) == 3
    assert all([e["text"]["text"] for e in row["elements"]] == list("12345") for row in rows)
    await world.press("UBOB", dm, "4")  # the first question's 4
    assert last_reply(fake).startswith("Your vote is in: 4.")
    assert "nobody, not even the poll's creator or an admin" in last_reply(fake)
    async with database.transaction() as session:
        first = await session.scalar(
            select(Poll).where(Poll.round_id.is_not(None)).order_by(Poll.id)
        )
        assert first is not None
        # An open anonymous question's ballots are in a table of its own (storage/polls.py).
        keyed = keyed_table(first.id)
        [choice] = await session.scalars(select(keyed.c.choice))
        voted = list(
            await session.scalars(
                select(PollParticipant.voted).where(PollParticipant.poll_id == first.id)
            )
        )
    assert choice == 4
    assert not {"member_id", "voted_at", "created_at"} & set(keyed.c.keys())  # nothing to link
    assert sorted(voted) == [False, False, True]
    assert fake.calls_of("chat.update") == []  # nothing anywhere shows a count
