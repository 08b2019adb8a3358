"""A pulse round on Teams end to end: set up with its form (an Adaptive Card in the lead's chat),
a round sent as one proactive DM per member with each question's buttons, answered from the
card, and at the close the results posted in the team's channel: a question answered by enough
people shows its score, one below the threshold shows nothing of its answers. The real Teams SDK
and App against the fake connector, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.fakes.teams import harness
from tests.fakes.teams.harness import (
    ALICE,
    BOB,
    CAROL,
    START,
    TEAM_CHANNEL,
    TeamsWorld,
    actions_of,
    card_of,
    inputs_of,
    shown,
    text_of,
)
from tests.fakes.teams.server import FakeTeams, Sent

trio = harness.trio
trio_installed = harness.trio_installed


def pulse_dm(fake: FakeTeams, who: str) -> Sent:
    [dm] = [s for s in fake.dms_to(who) if "Pulse check: Platform" in shown(s)]
    return dm


async def vote(world: TeamsWorld, who: str, dm: Sent, question: int, label: str) -> Any:
    """Press ``label`` on the ``question``-th row of answer buttons (0 is the first)."""
    buttons = [a for a in actions_of(card_of(dm.current)) if a.get("title") == label]
    answer = await world.post(world.invoke(who, dm, dict(buttons[question]["data"])))
    assert answer.status == 200, answer.body
    return answer


async def test_a_pulse_round_posts_only_what_enough_people_answered(
    trio_installed: TeamsWorld,
) -> None:
    world = trio_installed
    fake = world.fake
    await world.say(ALICE, "pulse setup", channel=TEAM_CHANNEL)
    form_message = fake.dms_to(ALICE)[-1]
    form = card_of(form_message.activity)
    names = {i["id"] for i in inputs_of(form)}
    assert {"team", "channel", "participants", "threshold"} <= names, names
    values = {
        "team": "Platform",
        "channel": "#team",
        "participants": "@alice @bob @carol",
        "timezone": "Europe/Berlin",
        "threshold": "3",
    }
    answer = await world.submit(ALICE, form_message, form, values)
    assert answer.status == 200, answer.body
    assert "Created the pulse check of **Platform**" in text_of(answer.body["value"])

    await world.say(ALICE, "pulse run Platform")
    said = [shown(s) for s in fake.dms_to(ALICE)]
    assert any("Sent a round of the Platform pulse to 3 member(s)" in t for t in said), said
    dms = {who: pulse_dm(fake, who) for who in (ALICE, BOB, CAROL)}
    for dm in dms.values():
        text = shown(dm)
        assert "nobody, not even an admin" in text
        rows = [a["title"] for a in actions_of(card_of(dm.activity))]
        assert rows == list("12345") * 3, rows  # three questions, 1-5 each
    # Everyone answers the first question; only carol the second.
    for who, label in ((ALICE, "5"), (BOB, "4"), (CAROL, "3")):
        reply = await vote(world, who, dms[who], 0, label)
        said = str(reply.body.get("value", "")) + shown(fake.dms_to(who)[-1])
        assert f"Your vote is in: {label}." in said, said
    await vote(world, CAROL, dms[CAROL], 1, "1")
    # bob's card pressed again (a double click, or Teams retrying the invoke): still one answer.
    await vote(world, BOB, dms[BOB], 0, "4")
    assert [s for s in fake.posts(TEAM_CHANNEL) if "Pulse results" in shown(s)] == []

    # The round closes after its open days (4): the results go to the team's channel.
    await world.move_to(START + timedelta(days=4, minutes=1))
    [results] = [s for s in fake.posts(TEAM_CHANNEL) if "Pulse results: Platform" in shown(s)]
    text = shown(results)
    assert "4.0 of 5" in text and "3 of 3 answered" in text, text
    assert "Not enough answers to show yet (1 of the 3 needed) · 1 of 3 answered" in text, text
    # Nothing of the lone answer leaks, nor who answered.
    assert "1: 1 (100%)" not in text
    for name in ("alice", "bob", "carol"):
        assert name not in text.lower()
