"""Kudos on Slack, end to end: the real slack-bolt app against the fake Slack (Socket Mode and
HTTP mode, SQLite and PostgreSQL). ``/kudos`` posts in the channel with the receivers as real
mentions and the reason escaped (no ``<!channel>`` ping), DMs the receiver and answers the giver
ephemerally; a bot and oneself are refused privately with nothing sent; the "Give kudos" global
shortcut asks who, opens the kudos form in place of the picker, and its submission gives."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.kudos import Kudos
from tests import test_slack_inbound as inbound
from tests.fakes.slack.harness import SlackWorld, text_of

fake = inbound.fake
world = inbound.world


def shown(posted: object) -> str:
    blocks = getattr(posted, "blocks", None)
    return text_of(blocks or [], getattr(posted, "text", ""))


async def kudos_count(world: SlackWorld) -> int:
    async with world.app.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(Kudos)) or 0)


def last_answer(world: SlackWorld) -> str:
    answer = world.fake.responses[-1]
    assert answer["response_type"] == "ephemeral"
    return text_of(answer.get("blocks") or [], answer.get("text", ""))


async def test_slash_kudos_posts_mentions_and_escapes_the_reason(world: SlackWorld) -> None:
    fake = world.fake
    ack = await world.command(
        "UALICE", "/kudos <@UBOB|bob> Thanks for the review <!channel> @everyone #craft"
    )
    assert ack.status == 200
    [post] = fake.posts("CTEAM")
    body = shown(post)
    assert "<@UBOB>" in body  # the receiver: a real mention
    assert "<!channel>" not in body and "<!everyone>" not in body
    assert "&lt;!channel&gt;" in body and "Thanks for the review" in body
    [dm] = fake.dms_to("UBOB")
    assert "gave you kudos" in shown(dm) and "#craft" in shown(dm)
    assert "Kudos to <@UBOB> (#craft) posted in <#CTEAM>." in last_answer(world)
    assert "left today" in last_answer(world)

    fake.add_user("UBOT", "deploybot", is_bot=True)
    for line, problem in (
        ("/kudos <@UBOT|deploybot> Thanks for deploying", "is a bot; name a person instead."),
        ("/kudos <@UALICE|alice> Thanks me", "you can't give yourself kudos"),
        ("/kudos <@UBOB|bob> Great #speed", "#speed is not one of this workspace's values"),
    ):
        await world.command("UALICE", line)
        assert problem in last_answer(world), line
    assert len(fake.posts("CTEAM")) == 1 and len(fake.dms_to("UBOB")) == 1
    assert await kudos_count(world) == 1


async def test_the_give_kudos_shortcut_asks_who_then_opens_the_form(world: SlackWorld) -> None:
    fake = world.fake
    await world.global_shortcut("UALICE", "give_kudos")
    ack = await world.submit("UALICE", {"who": "UBOB", "where": "CTEAM"})
    assert ack.body["response_action"] == "update"
    form = ack.body["view"]
    assert form["callback_id"] == "kudos-give"
    assert form["title"]["text"] == "Kudos for bob"
    view = {**form, "id": "V-kudos"}
    done = await world.submit(
        "UALICE", {"reason": "Unblocked the release", "value": "ownership", "private": "no"}, view
    )
    [post] = fake.posts("CTEAM")
    assert "<@UBOB>" in shown(post) and "Unblocked the release" in shown(post)
    assert "#ownership" in shown(post)
    [dm] = fake.dms_to("UBOB")
    assert "Unblocked the release" in shown(dm)
    # The confirmation replaces the form, in the modal.
    # The modal closes; the confirmation is an ephemeral message in the conversation.
    assert done.body.get("response_action") is None
    [ephemeral] = fake.calls_of("chat.postEphemeral")
    assert ephemeral.args["channel"] == "CTEAM" and ephemeral.args["user"] == "UALICE"
    confirmation = text_of(ephemeral.args["blocks"])
    assert "Kudos to <@UBOB> (#ownership) posted in <#CTEAM>." in confirmation
    # On oneself, the shortcut says so before any form.
    await world.global_shortcut("UALICE", "give_kudos")
    await world.submit("UALICE", {"who": "UALICE", "where": "CTEAM"})
    assert "you can't give yourself kudos" in last_answer(world)
    assert await kudos_count(world) == 1
