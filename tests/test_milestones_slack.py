"""Milestones on Slack, end to end: the real slack-bolt app against the fake Slack (Socket Mode
and HTTP mode, SQLite and PostgreSQL). ``/milestone add`` with nothing after it opens the form
and its submission adds the milestone for the channel it was typed in; the demo clock reaches
T-7 and the countdown is posted there; ``/milestone done`` posts the celebration, mentioning who
was involved, and its card follows as a PNG file in the same channel; a bad date keeps the form
open with the error under the field."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from PIL import Image
from sqlalchemy import select

from bot.charts import render_png
from bot.chat import Chart
from bot.delivery.outbox import decode_message
from storage.milestones import Milestone
from storage.models import OutboxMessage
from tests import test_slack_inbound as inbound
from tests.fakes.slack.harness import SlackWorld, text_of
from tests.test_kudos_slack import last_answer, shown

fake = inbound.fake
world = inbound.world


async def test_the_form_the_countdown_and_the_celebration_with_its_card(world: SlackWorld) -> None:
    fake = world.fake
    await world.command("UALICE", "/milestone add")
    [view] = fake.views
    assert view["callback_id"] == "milestone-add"
    bad = await world.submit("UALICE", {"name": "Launch v2", "date": "someday"})
    assert "can't read" in world.form_errors(bad)["date"]
    done = await world.submit(
        "UALICE", {"name": "Launch v2", "date": "2026-03-20", "owner": "@bob"}, view
    )
    assert world.form_errors(done) == {}
    async with world.app.db.transaction() as session:
        [milestone] = list(await session.scalars(select(Milestone)))
    assert (milestone.channel_id, milestone.timezone) == ("CTEAM", "Europe/Berlin")

    await world.move_to(datetime(2026, 3, 13, 8, 1, tzinfo=UTC))  # 09:01 in Berlin, T-7
    [countdown] = fake.posts("CTEAM")
    assert shown(countdown).startswith("⏳ 7 days to *Launch v2*: due Fri 20 Mar 2026")
    assert "<@UBOB>" in shown(countdown)

    await world.command("UBOB", "/milestone done Launch v2")
    assert "Marked *Launch v2* done." in last_answer(world)
    [_, celebration] = [p for p in fake.posts("CTEAM") if not p.files]
    body = shown(celebration)
    assert "Milestone done: Launch v2" in body and "<@UBOB> (owner)" in body
    assert "Done Thu 19 Mar 2026" not in body and "Done Fri 13 Mar 2026, 7 days early" in body
    [shared] = fake.shared_files("CTEAM")
    assert shared.data is not None
    Image.open(io.BytesIO(shared.data)).verify()
    async with world.app.db.transaction() as session:
        row = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.idempotency_key.like("milestone:%:done"))
        )
    assert row is not None
    [card] = [b for b in decode_message(row.payload).blocks if isinstance(b, Chart)]
    assert shared.data == render_png(card) and shared.alt_txt == card.alt
    # Twice: who and when, privately; nothing more posted.
    await world.command("UALICE", "/milestone done Launch v2")
    assert "already marked done by bob" in last_answer(world)
    assert len(fake.posts("CTEAM")) == 3 and "Launch v2" in text_of(celebration.blocks)
