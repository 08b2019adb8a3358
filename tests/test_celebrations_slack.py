"""Celebrations on Slack, end to end: the real slack-bolt app against the fake Slack (Socket
Mode and HTTP mode, SQLite and PostgreSQL). ``/syncup birthday 03-14`` is answered privately,
and on the day the birthday is posted in the celebrations channel at 09:00 in the member's own
zone (bob's New York, from his Slack profile), with bob as a real mention; a bad date is
refused privately and nothing is posted."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from storage.celebrations import CelebrationProfile
from tests import test_slack_inbound as inbound
from tests.fakes.slack.harness import SlackWorld
from tests.test_kudos_slack import last_answer, shown

fake = inbound.fake
world = inbound.world


async def test_a_birthday_is_posted_at_nine_in_the_members_zone(world: SlackWorld) -> None:
    fake = world.fake
    await world.command("UALICE", "/syncup celebrations channel <#CTEAM|team>")
    assert "Saved: celebrations are posted in #team." in last_answer(world)
    await world.command("UBOB", "/syncup birthday 02-30")
    assert "February has no day 30" in last_answer(world)
    await world.command("UBOB", "/syncup birthday 1990-03-14")
    assert "never needs, stores or shows the year" in last_answer(world)
    async with world.app.db.transaction() as session:
        assert list(await session.scalars(select(CelebrationProfile))) == []
    await world.command("UBOB", "/syncup birthday 03-14")
    assert "Saved: your birthday is 14 March (no year is kept)." in last_answer(world)
    await world.command("UBOB", "/syncup celebrations streak 3")
    assert "Only admins can do that." in last_answer(world)
    # 09:00 in New York on 14 March (EDT since the 8th) is 13:00 UTC.
    await world.move_to(datetime(2026, 3, 14, 12, 59, tzinfo=UTC))
    assert fake.posts("CTEAM") == []
    await world.move_to(datetime(2026, 3, 14, 13, 1, tzinfo=UTC))
    [post] = fake.posts("CTEAM")
    assert shown(post) == "🎂 Happy birthday, <@UBOB>! Have a wonderful day."
    # Once a year: the next days post nothing more.
    await world.move_to(datetime(2026, 3, 16, tzinfo=UTC))
    assert len(fake.posts("CTEAM")) == 1
