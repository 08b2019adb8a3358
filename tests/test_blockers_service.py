"""Blockers through the core on SQLite and PostgreSQL: adding (line and form), the card in the
area's channel or the reporter's DM, acknowledging, resolving, reopening, snoozing,
reassigning, notes, cancelling; who may do what; bad input saved nothing; two people pressing
Resolve at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.chat import FormErrors, OpenForm
from bot.events import ShortcutInvocation
from bot.features.blockers import cards
from bot.features.blockers.commands import ADD_FORM, NOTE_FORM, REASSIGN_FORM
from bot.features.blockers.timeline import Kind
from bot.port import Method
from storage.db import Database
from storage.models import Blocker, BlockerEvent, BlockerSeverity, BlockerStatus
from tests.blocker_world import (
    ADMIN,
    ALICE,
    BOB,
    DANA,
    ERIN,
    FRANK,
    START,
    World,
    command,
    make_world,
    origin,
    press,
    said,
    submit,
)


@pytest.fixture
async def world(database: Database) -> World:
    return await make_world(database)


async def test_add_by_line_posts_a_card_in_the_areas_channel(world: World) -> None:
    answer = await world.run(
        "/blocker add The nightly ETL job fails on the new schema --waiting-on @dana "
        "--severity high"
    )
    assert answer == (
        "Blocker #1 is open in area data pipeline (suggested from its text: confirm it on the "
        "card). Its card is in #C-data."
    )
    blocker = await world.blocker(1)
    assert blocker.area_id == world.areas["data pipeline"]
    assert blocker.waiting_on_member_id == world.members["dana"]
    assert blocker.severity == BlockerSeverity.HIGH
    assert blocker.source == "command" and blocker.status == BlockerStatus.OPEN
    assert await world.kinds(1) == [Kind.OPENED]
    rows = await world.outbox()
    card = rows[-1]
    assert card.idempotency_key == "blocker:1:card:cC-data"
    assert card.method == Method.POST.value and card.target == {"channel_id": "C-data"}
    assert blocker.card_outbox_id == card.id
    labels = [b["label"] for b in card.payload["blocks"][-1]["elements"]]
    assert labels == [
        "Acknowledge",
        "Resolve",
        "Snooze",
        "Reassign",
        "Add note",
        "Confirm area: data pipeline",
    ]
    ids = [b["action_id"] for b in card.payload["blocks"][-1]["elements"]]
    assert ids[:5] == [
        "blocker:ack:1",
        "blocker:resolve:1",
        "blocker:snooze:1",
        "blocker:reassign:1",
        "blocker:note:1",
    ]


async def test_confirming_the_area_and_acknowledging_update_the_card_in_place(world: World) -> None:
    await world.run("/blocker add Airflow scheduler is down")
    area = str(world.areas["data pipeline"])
    answer = said(await world.core.handle(press("blocker:area:1", ALICE, area)))
    assert answer == "Blocker #1 is in area data pipeline."
    answer = said(await world.core.handle(press("blocker:ack:1", DANA)))
    assert answer == "Acknowledged blocker #1; its escalation pauses."
    blocker = await world.blocker(1)
    assert blocker.status == BlockerStatus.ACKNOWLEDGED
    assert blocker.acknowledged_by_id == world.members["dana"]
    assert blocker.escalation_generation == 1
    rows = await world.outbox()
    keys = [r.idempotency_key for r in rows if r.idempotency_key.startswith("blocker:1:")]
    assert keys == [
        "blocker:1:card:cC-data",
        "blocker:1:card:cC-data:v1",
        "blocker:1:card:cC-data:v2",
    ]
    update = rows[-1]
    assert update.method == Method.UPDATE.value and update.depends_on_id == blocker.card_outbox_id
    shown = str(update.payload)
    assert "Acknowledged by @dana" in shown and "Confirm area" not in shown
    assert "acknowledged" in shown  # the timeline at the foot of the card
    assert await world.kinds(1) == [Kind.OPENED, Kind.AREA, Kind.ACKNOWLEDGED]


async def test_no_area_channel_sends_the_card_to_the_reporter_by_dm(world: World) -> None:
    answer = await world.run("/blocker add Need more labelers for the audio set --area labeling")
    assert answer == (
        "Blocker #1 is open in area labeling. Area labeling has no channel yet, so its card "
        "comes to you by DM."
    )
    card = (await world.outbox())[-1]
    assert card.method == Method.DM.value and card.target["user_id"] == "U1"
    answer = await world.run("/blocker add Something unrelated to any area")
    assert "No area matched its text, so its card comes to you by DM" in answer


async def test_resolve_reopen_cancel_snooze_reassign_note(world: World) -> None:
    await world.run("/blocker add Waiting on GPU quota --area data pipeline")
    assert await world.run("/blocker note 1 Asked infra", BOB) == "Added your note to blocker #1."
    world.clock.advance(timedelta(hours=1))  # Monday 11:00 UTC, 12:00 in Berlin
    answer = await world.run("/blocker snooze 1 tomorrow", DANA)
    assert answer == "Snoozed blocker #1 until Tue 10 Mar 09:00 (Europe/Berlin)."
    assert (await world.blocker(1)).snoozed_until == START.replace(day=10, hour=8)
    answer = await world.run("/blocker reassign 1 labeling", ERIN)
    assert answer == "Blocker #1 now waits on area labeling; its escalation restarts."
    assert (await world.blocker(1)).waiting_on_area_id == world.areas["labeling"]
    # frank, the labeling area's Accountable, may resolve it now
    assert await world.run("/blocker resolve 1", FRANK) == "Resolved blocker #1."
    answer = await world.run("/blocker resolve 1", ALICE)
    assert answer == (
        "Blocker #1 was already resolved by @frank on Mon 9 Mar 12:00; "
        "/blocker reopen 1 first if it is back."
    )
    assert (
        await world.run("/blocker reopen 1") == "Reopened blocker #1; its escalation starts again."
    )
    assert await world.run("/blocker cancel 1", DANA) == (
        "Only its reporter and admins can cancel blocker #1."
    )
    assert await world.run("/blocker cancel 1") == "Cancelled blocker #1."
    assert await world.kinds(1) == [
        Kind.OPENED,
        Kind.NOTED,
        Kind.SNOOZED,
        Kind.REASSIGNED,
        Kind.RESOLVED,
        Kind.REOPENED,
        Kind.CANCELLED,
    ]
    shown = await world.run("/blocker show 1")
    assert "Blocker #1" in shown and "Cancelled by @alice" in shown
    assert "bob noted: Asked infra" in shown and "frank resolved it" in shown


async def test_list_filters(world: World) -> None:
    await world.run("/blocker add ETL job broken --waiting-on @dana")
    await world.run("/blocker add Need annotation budget --area labeling", BOB)
    assert "#1 ETL job broken (by @alice, data pipeline, waiting on @dana, 0m old)" in (
        await world.run("/blocker list mine")
    )
    assert "#2" not in await world.run("/blocker list mine")
    assert "#1" in await world.run("/blocker list waiting-on-me", DANA)
    # frank is labeling's Accountable: #2 is of labeling and waits on nobody in particular
    frank = await world.run("/blocker list waiting-on-me", FRANK)
    assert "#2 Need annotation budget" in frank and "#1" not in frank
    assert "none" in await world.run("/blocker list waiting-on-me", BOB)
    listed = await world.run("/blocker list labeling")
    assert "#2" in listed and "#1" not in listed
    assert "Open blockers (2)" in await world.run("/blocker list")
    assert await world.run("/blocker list nowhere") == (
        'Unknown area "nowhere"; areas: data pipeline, labeling'
    )


async def test_the_form_and_the_shortcut(world: World) -> None:
    response = await world.core.handle(command("/blocker add"))
    assert isinstance(response, OpenForm) and response.form.form_id == ADD_FORM
    errors = await world.core.handle(
        submit(ADD_FORM, ALICE, {"text": "x", "area": "nowhere", "severity": "normal"})
    )
    assert isinstance(errors, FormErrors) and "area" in errors.errors
    assert await world.count(Blocker) == 0
    shortcut = ShortcutInvocation(
        origin(),
        BOB,
        "report_blocker",
        message_text="The annotation tool is down again",
        message_link="https://example.slack.com/archives/C1/p1",
    )
    form = await world.core.handle(shortcut)
    assert isinstance(form, OpenForm)
    assert form.form.fields[0].initial == "The annotation tool is down again"  # type: ignore[union-attr]
    answer = await world.core.handle(
        submit(
            ADD_FORM,
            BOB,
            {"text": "The annotation tool is down again", "area": "", "severity": "critical"},
            form.form.state,
        )
    )
    assert "Blocker #1 is open in area labeling" in said(answer)
    blocker = await world.blocker(1)
    assert blocker.source == "message"
    assert blocker.source_link == "https://example.slack.com/archives/C1/p1"
    assert blocker.severity == BlockerSeverity.CRITICAL
    # the card's Reassign and Add note buttons open forms
    reassign = await world.core.handle(press("blocker:reassign:1", FRANK))
    assert isinstance(reassign, OpenForm) and reassign.form.form_id == REASSIGN_FORM
    done = await world.core.handle(submit(REASSIGN_FORM, FRANK, {"to": "@dana"}, "1"))
    assert said(done) == "Blocker #1 now waits on @dana; its escalation restarts."
    note = await world.core.handle(press("blocker:note:1", BOB))
    assert isinstance(note, OpenForm) and note.form.form_id == NOTE_FORM
    done = await world.core.handle(submit(NOTE_FORM, BOB, {"text": "Vendor ticket 42"}, "1"))
    assert said(done) == "Added your note to blocker #1."


BAD_ADDS = [
    ("/blocker add   --area labeling", "Say what blocks you: the text is empty."),
    (
        "/blocker add X --severity urgent",
        'Unknown severity "urgent"; use one of low, normal, high, critical.',
    ),
    ("/blocker add X --area nowhere", 'Unknown area "nowhere"; areas: data pipeline, labeling'),
    ("/blocker add X --waiting-on @nobody", "No member named @nobody in this workspace."),
    (
        "/blocker add X --waiting-on <@U404>",
        "<@U404> is not a member of this workspace that syncup knows.",
    ),
    (
        "/blocker add X --priority high",
        "Unknown option --priority; use --area, --waiting-on or --severity.",
    ),
]


@pytest.mark.parametrize(("line", "error"), BAD_ADDS)
async def test_bad_adds_save_nothing(world: World, line: str, error: str) -> None:
    before = len(await world.outbox())
    assert await world.run(line) == error
    assert await world.count(Blocker) == 0
    assert len(await world.outbox()) == before


async def test_bad_changes_are_refused_privately_and_save_nothing(world: World) -> None:
    await world.run("/blocker add ETL job broken --area data pipeline")
    before = (len(await world.outbox()), await world.count(BlockerEvent))
    refusal = await world.run("/blocker resolve 1", BOB)
    assert refusal.startswith("You can't resolve blocker #1: only the member or area it waits on")
    assert (await world.run("/blocker ack 1", FRANK)).startswith("You can't acknowledge blocker #1")
    assert await world.run("/blocker resolve 99") == (
        "There is no blocker #99 here; /blocker list shows them."
    )
    assert await world.run("/blocker resolve abc") == (
        '"abc" is not a blocker number; /blocker list shows them (e.g. 7).'
    )
    past = await world.run("/blocker snooze 1 2026-03-01 09:00", DANA)
    assert past.startswith("Sun 1 Mar 08:00 (UTC) is in the past") or "is in the past" in past
    assert "is in the past" in await world.run("/blocker snooze 1 08:00", DANA)
    assert "can't read" in await world.run("/blocker snooze 1 someday", DANA)
    assert await world.run("/blocker reassign 1 <@U404>", DANA) == (
        "<@U404> is not a member of this workspace that syncup knows."
    )
    assert await world.run("/blocker reassign 1 nowhere", DANA) == (
        'Unknown area "nowhere"; areas: data pipeline, labeling'
    )
    assert await world.run("/blocker note 1   ", DANA) != "Added your note to blocker #1."
    # another workspace's blocker #1 is no blocker at all there
    other = said(await world.core.handle(command("/blocker resolve 1", ADMIN, workspace="W2")))
    assert other == "There is no blocker #1 here; /blocker list shows them."
    assert (len(await world.outbox()), await world.count(BlockerEvent)) == before
    blocker = await world.blocker(1)
    assert blocker.status == BlockerStatus.OPEN and blocker.snoozed_until is None


async def test_admin_and_reporter_may_resolve_and_escalation_targets_too(world: World) -> None:
    await world.run("/blocker add one")
    await world.run("/blocker add two")
    await world.run("/blocker add three")
    assert await world.run("/blocker resolve 1") == "Resolved blocker #1."  # the reporter
    assert await world.run("/blocker resolve 2", ADMIN) == "Resolved blocker #2."
    async with world.db.transaction() as session:
        session.add(
            BlockerEvent(
                blocker_id=3,
                at=START,
                kind=Kind.ESCALATED,
                detail={"level": 1, "round": 1, "targets": [world.members["bob"]]},
            )
        )
    assert (
        await world.run("/blocker ack 3", BOB) == "Acknowledged blocker #3; its escalation pauses."
    )


async def test_two_people_pressing_resolve_at_once_one_wins(world: World) -> None:
    await world.run("/blocker add ETL job broken --area data pipeline")
    first, second = await asyncio.gather(
        world.core.handle(press("blocker:resolve:1", DANA)),
        world.core.handle(press("blocker:resolve:1", ERIN)),
    )
    answers = {said(first), said(second)}
    winner = "dana" if said(first) == "Resolved blocker #1." else "erin"
    assert answers == {
        "Resolved blocker #1.",
        f"Blocker #1 was already resolved by @{winner} on Mon 9 Mar 11:00; "
        "/blocker reopen 1 first if it is back.",
    }
    assert (await world.kinds(1)).count(Kind.RESOLVED) == 1
    blocker = await world.blocker(1)
    assert blocker.resolved_by_id == world.members[winner]


async def test_buttons_of_a_closed_blocker_offer_reopen(world: World) -> None:
    await world.run("/blocker add ETL job broken")
    await world.run("/blocker resolve 1")
    blocker = await world.blocker(1)
    assert [b.label for b in cards.buttons(blocker).elements] == ["Reopen"]
    answer = said(await world.core.handle(press("blocker:reopen:1", ALICE)))
    assert answer == "Reopened blocker #1; its escalation starts again."


async def test_stats_in_business_hours_per_area_and_dependency_pair(world: World) -> None:
    # Monday 11:00 in Berlin; data pipeline works 09:00-17:00 Berlin time.
    await world.run("/blocker add ETL job broken --area data pipeline")
    await world.run("/blocker add Need the schema --area labeling --waiting-on data pipeline")
    world.clock.advance(timedelta(hours=2))
    await world.run("/blocker ack 1", DANA)
    world.clock.advance(timedelta(hours=22))  # Tuesday 11:00 in Berlin
    await world.run("/blocker resolve 1", DANA)
    stats = await world.run("/blocker stats --weeks 2")
    assert stats.splitlines()[0] == "Blockers, last 2 weeks"
    # 2 business hours to acknowledge; Monday 11-17 and Tuesday 9-11 to resolve: 8 hours
    assert (
        "opened 2, resolved 1, open now 1; to acknowledge median 2.0h p90 2.0h; "
        "to resolve median 8.0h p90 8.0h (business hours)"
    ) in stats
    assert "#2 1d old, by @alice: Need the schema" in stats
    assert "data pipeline: opened 1, resolved 1, open now 0" in stats
    assert "labeling waiting on data pipeline: opened 1, resolved 0, open now 1" in stats
    of_area = await world.run("/blocker stats labeling")
    assert of_area.startswith("Blockers of labeling, last 4 weeks\nopened 1, resolved 0")
    assert await world.run("/blocker stats --weeks 0") == (
        '--weeks must be a whole number of weeks from 1 to 520, not "0".'
    )
    assert await world.run("/blocker stats nowhere") == (
        'Unknown area "nowhere"; areas: data pipeline, labeling'
    )
