"""When standups are due (invariant 7), the gaps mutation testing of
``bot/features/standups/schedules.py`` found (issue 17; docs/testing.md): the trigger's local
time, weekdays, off-weeks, holidays and first day; each member's zone; the keys occurrences are
claimed under; a run's window (its latest prompt, nudge and cutoff); and what the standups
source hands the scheduler (prompts, reminders, nudges, closes, report sweeps) and what it
leaves out (paused standups, removed workspaces, answered or stale prompts, closed runs).

The trigger and the helpers are plain functions; the source and the run window are read from
SQLite and PostgreSQL (the ``database`` fixture). No scheduler runs: each test takes a moment.
"""

from __future__ import annotations

import itertools
import logging
import os
import time as host_clock
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.date import DateTrigger

from bot.features.standups import schedules
from bot.features.standups.schedules import (
    LocalDateSchedule,
    OnceSchedule,
    StandupSchedules,
    StandupTrigger,
)
from bot.scheduling.scheduler import Schedule
from storage.db import Database
from storage.models import (
    Channel,
    Member,
    PromptStatus,
    Standup,
    StandupParticipant,
    StandupPrompt,
    StandupRun,
    Workspace,
)

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = date(2026, 3, 9)  # an even week counted from 2000-01-03, the default anchor
NOW = datetime(2026, 3, 9, 6, 0, tzinfo=UTC)
NAMES = itertools.count(1)  # standups' names, unique in a workspace


def fires(trigger: StandupTrigger, start: datetime, count: int) -> list[datetime]:
    out: list[datetime] = []
    previous: datetime | None = None
    now = start
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        out.append(fire)
        previous, now = fire, fire + timedelta(microseconds=1)
    return out


def local(day: date, clock: str, zone: ZoneInfo = BERLIN) -> datetime:
    hour, minute = (int(p) for p in clock.split(":"))
    return datetime.combine(day, time(hour, minute), zone)


def standup(**fields: object) -> Standup:
    values: dict[str, object] = {
        "days": [1, 2, 3, 4, 5],
        "every_weeks": 1,
        "anchor_date": date(2026, 1, 5),
        "time_of_day": "09:00",
        "holidays": [],
        "window_minutes": 240,
    }
    values.update(fields)
    return Standup(**values)


# -- the helpers -----------------------------------------------------------------------------------


def test_a_members_prompts_follow_the_team_zone_else_their_own_else_utc() -> None:
    member = Member(timezone="Asia/Kolkata")
    assert schedules.member_zone(standup(team_timezone="Europe/Berlin"), member) == "Europe/Berlin"
    assert schedules.member_zone(standup(team_timezone=None), member) == "Asia/Kolkata"
    assert schedules.member_zone(standup(team_timezone=None), Member(timezone=None)) == "UTC"


def test_a_time_of_day_keeps_its_minutes_and_may_leave_them_out() -> None:
    assert schedules.parse_time_of_day("09:30") == time(9, 30)
    assert schedules.parse_time_of_day("23:05") == time(23, 5)
    assert schedules.parse_time_of_day("7") == time(7, 0)


def test_a_standup_runs_on_its_weekdays_of_its_on_weeks_and_not_on_holidays() -> None:
    weekly = standup(anchor_date=date(2026, 3, 2), holidays=None)
    assert [schedules.runs_on(weekly, MONDAY + timedelta(days=n)) for n in range(8)] == [
        True, True, True, True, True, False, False, True,
    ]  # fmt: skip
    fortnightly = standup(every_weeks=2, anchor_date=MONDAY, holidays=["2026-03-10"])
    on = [MONDAY + timedelta(days=n) for n in range(28)]
    assert [d for d in on if schedules.runs_on(fortnightly, d)] == [
        date(2026, 3, 9), date(2026, 3, 11), date(2026, 3, 12), date(2026, 3, 13),
        date(2026, 3, 23), date(2026, 3, 24), date(2026, 3, 25), date(2026, 3, 26),
        date(2026, 3, 27),
    ]  # fmt: skip
    # Weeks before the anchor count too.
    assert not schedules.runs_on(fortnightly, date(2026, 3, 3))
    assert schedules.runs_on(fortnightly, date(2026, 2, 24))
    every_third = standup(days=[1], every_weeks=3, anchor_date=MONDAY)
    assert [
        d
        for d in (MONDAY + timedelta(weeks=n) for n in range(7))
        if schedules.runs_on(every_third, d)
    ] == [date(2026, 3, 9), date(2026, 3, 30), date(2026, 4, 20)]


def test_a_prompts_instant_is_its_local_time_through_dst_and_odd_offsets() -> None:
    berlin = standup(time_of_day="09:00")
    assert schedules.prompt_time(berlin, "Europe/Berlin", MONDAY) == datetime(
        2026, 3, 9, 8, 0, tzinfo=UTC
    )
    assert schedules.prompt_time(berlin, "Europe/Berlin", date(2026, 3, 30)) == datetime(
        2026, 3, 30, 7, 0, tzinfo=UTC
    )
    assert schedules.prompt_time(standup(time_of_day="09:30"), "Asia/Kolkata", MONDAY) == (
        datetime(2026, 3, 9, 4, 0, tzinfo=UTC)
    )
    # 02:30 does not exist in Berlin on 29 March 2026: shifted forward by the gap.
    assert schedules.prompt_time(
        standup(time_of_day="02:30"), "Europe/Berlin", date(2026, 3, 29)
    ) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_the_edit_deadline_is_a_day_after_the_prompt_or_the_windows_end_if_later() -> None:
    prompted = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
    assert schedules.edit_deadline(standup(window_minutes=240), prompted) == prompted + timedelta(
        hours=24
    )
    assert schedules.edit_deadline(standup(window_minutes=2000), prompted) == prompted + timedelta(
        minutes=2000
    )


def test_occurrence_keys_are_the_local_date_for_prompts_and_the_key_for_one_shots() -> None:
    trigger = DateTrigger(run_date=NOW, timezone=UTC)
    late_evening_utc = datetime(2026, 3, 9, 20, 0, tzinfo=UTC)  # already the 10th in Auckland
    prompt = LocalDateSchedule("standup:3:m:7", "standup-prompt", trigger, zone="Pacific/Auckland")
    assert prompt.occurrence_key(late_evening_utc) == "standup:3:m:7@2026-03-10"
    assert prompt.local_date(late_evening_utc) == date(2026, 3, 10)
    assert LocalDateSchedule("k", "h", trigger).occurrence_key(late_evening_utc) == "k@2026-03-09"
    once = OnceSchedule("standup:3:run:9:close", "standup-close", trigger)
    assert once.occurrence_key(late_evening_utc) == "standup:3:run:9:close"
    assert once.occurrence_key(NOW) == "standup:3:run:9:close"


def test_prompt_schedule_keys_name_the_standup_and_the_member() -> None:
    assert schedules.prompt_schedule_key(Standup(id=5), None) == "standup:5:team"
    assert schedules.prompt_schedule_key(Standup(id=5), Member(id=7)) == "standup:5:m:7"


# -- the trigger -----------------------------------------------------------------------------------


def test_the_trigger_fires_at_the_local_time_on_the_chosen_weekdays() -> None:
    trigger = StandupTrigger(days=[3, 1, 1], at=time(9, 30), zone="Europe/Berlin")
    assert fires(trigger, datetime(2026, 3, 8, 12, 0, tzinfo=UTC), 4) == [
        local(date(2026, 3, 9), "09:30"),
        local(date(2026, 3, 11), "09:30"),
        local(date(2026, 3, 16), "09:30"),
        local(date(2026, 3, 18), "09:30"),
    ]
    sunday = StandupTrigger(days=[7], at=time(8, 5), zone="UTC")
    assert fires(sunday, NOW, 1) == [datetime(2026, 3, 15, 8, 5, tzinfo=UTC)]


def test_the_trigger_refuses_days_that_are_not_iso_weekdays() -> None:
    for days in ([], [0], [8], [1, 9]):
        with pytest.raises(ValueError, match=r"standup days must be ISO weekdays 1\.\.7, got"):
            StandupTrigger(days=days, at=time(9), zone="UTC")
    with pytest.raises(ValueError) as refused:
        StandupTrigger(days=[5, 8], at=time(9), zone="UTC")
    assert str(refused.value) == "standup days must be ISO weekdays 1..7, got [5, 8]"


def test_without_an_anchor_weeks_run_monday_to_sunday_from_a_monday() -> None:
    trigger = StandupTrigger(days=range(1, 8), at=time(9), zone="UTC", every_weeks=2)
    got = fires(trigger, datetime(2026, 3, 9, 0, 0, tzinfo=UTC), 8)
    assert [f.date() for f in got] == [MONDAY + timedelta(days=n) for n in range(7)] + [
        date(2026, 3, 23)
    ]


def test_an_anchor_chooses_the_on_weeks_and_less_than_one_week_means_every_week() -> None:
    anchored = StandupTrigger(
        days=[1], at=time(9), zone="UTC", every_weeks=2, anchor=date(2026, 3, 16)
    )
    assert [f.date() for f in fires(anchored, NOW, 2)] == [date(2026, 3, 16), date(2026, 3, 30)]
    every_week = StandupTrigger(days=[1], at=time(9), zone="UTC", every_weeks=0)
    assert every_week.every_weeks == 1
    assert [f.date() for f in fires(every_week, NOW, 2)] == [MONDAY, date(2026, 3, 16)]


def test_a_holiday_is_skipped_and_the_next_day_still_fires_even_just_after_midnight() -> None:
    trigger = StandupTrigger(
        days=[1, 2], at=time(0, 30), zone="Europe/Berlin", holidays=["2026-03-09"]
    )
    assert fires(trigger, datetime(2026, 3, 8, 12, 0, tzinfo=UTC), 3) == [
        local(date(2026, 3, 10), "00:30"),
        local(date(2026, 3, 16), "00:30"),
        local(date(2026, 3, 17), "00:30"),
    ]


def test_nothing_fires_before_the_standup_was_created_and_its_very_instant_does() -> None:
    created = local(MONDAY, "09:30")
    at_creation = StandupTrigger(
        days=[1, 2], at=time(9, 30), zone="Europe/Berlin", not_before=created
    )
    start = datetime(2026, 3, 9, 0, 0, tzinfo=UTC)
    assert fires(at_creation, start, 1) == [created]
    just_after = StandupTrigger(
        days=[1, 2],
        at=time(9, 30),
        zone="Europe/Berlin",
        not_before=created + timedelta(microseconds=1),
    )
    assert fires(just_after, start, 2) == [
        local(date(2026, 3, 10), "09:30"),
        local(date(2026, 3, 16), "09:30"),
    ]


def test_the_trigger_describes_itself_with_its_weeks() -> None:
    trigger = StandupTrigger(days=[1], at=time(9), zone="UTC", every_weeks=2)
    assert str(trigger).startswith("standup cron[")
    assert str(trigger).endswith(" every 2 week(s)")


def test_a_standups_trigger_carries_all_its_settings() -> None:
    created = datetime(2026, 3, 16, 3, 0, tzinfo=UTC)  # 08:30 in Kolkata, after that prompt
    row = standup(
        days=[1, 2, 3],
        time_of_day="07:45",
        every_weeks=2,
        anchor_date=date(2026, 3, 16),
        holidays=["2026-03-17"],
        created_at=created,
    )
    trigger = schedules.trigger_for(row, "Asia/Kolkata")
    kolkata = ZoneInfo("Asia/Kolkata")
    assert fires(trigger, NOW, 4) == [
        local(date(2026, 3, 18), "07:45", kolkata),
        local(date(2026, 3, 30), "07:45", kolkata),
        local(date(2026, 3, 31), "07:45", kolkata),
        local(date(2026, 4, 1), "07:45", kolkata),
    ]
    no_holidays = schedules.trigger_for(standup(holidays=None, created_at=created), "UTC")
    assert fires(no_holidays, NOW, 1) == [datetime(2026, 3, 16, 9, 0, tzinfo=UTC)]


# -- from the database: the run's window and the source --------------------------------------------


@dataclass
class Place:
    workspace: int
    channel: int
    members: dict[str, int]


async def place(db: Database, zones: dict[str, str | None], *, external: str = "w1") -> Place:
    async with db.transaction() as session:
        workspace = Workspace(platform="console", external_id=external, created_at=NOW)
        session.add(workspace)
        await session.flush()
        channel = Channel(workspace_id=workspace.id, external_id="C1", created_at=NOW)
        people = [
            Member(
                workspace_id=workspace.id,
                platform_user_id=f"U-{name}",
                display_name=name,
                timezone=zone,
                created_at=NOW,
                updated_at=NOW,
            )
            for name, zone in zones.items()
        ]
        session.add_all([channel, *people])
        await session.flush()
        return Place(workspace.id, channel.id, {m.display_name: m.id for m in people})


async def add_standup(
    db: Database, where: Place, participants: Sequence[str], **fields: object
) -> int:
    async with db.transaction() as session:
        row = standup(
            workspace_id=where.workspace,
            name=f"Daily {next(NAMES)}",
            report_channel_id=where.channel,
            questions=[{"text": "Today?"}],
            created_at=NOW - timedelta(days=30),
            updated_at=NOW,
            **fields,
        )
        session.add(row)
        await session.flush()
        session.add_all(
            StandupParticipant(standup_id=row.id, member_id=where.members[n]) for n in participants
        )
        return row.id


async def add_run(
    db: Database,
    standup_id: int,
    *,
    run_date: date = MONDAY,
    closes_at: datetime = NOW + timedelta(days=1),
    occasion: str = "",
    created_at: datetime = NOW,
    dirty_since: datetime | None = None,
) -> int:
    async with db.transaction() as session:
        run = StandupRun(
            standup_id=standup_id,
            run_date=run_date,
            occasion=occasion,
            closes_at=closes_at,
            created_at=created_at,
            report_dirty_since=dirty_since,
        )
        session.add(run)
        await session.flush()
        return run.id


async def add_prompt(db: Database, run_id: int, member_id: int, **fields: object) -> int:
    async with db.transaction() as session:
        values: dict[str, object] = {"status": PromptStatus.PENDING, "updated_at": NOW}
        values.update(fields)
        prompt = StandupPrompt(run_id=run_id, member_id=member_id, **values)
        session.add(prompt)
        await session.flush()
        return prompt.id


async def times_of(db: Database, standup_id: int, run_id: int) -> schedules.RunTimes:
    async with db.transaction() as session:
        row = await session.get(Standup, standup_id)
        run = await session.get(StandupRun, run_id)
        assert row is not None and run is not None
        return await schedules.run_times(session, row, run)


async def source(db: Database, now: datetime = NOW) -> dict[str, Schedule]:
    async with db.transaction() as session:
        found = list(await StandupSchedules().schedules(session, now))
    by_key = {s.key: s for s in found}
    assert len(by_key) == len(found), [s.key for s in found]
    return by_key


def run_at(schedule: Schedule) -> datetime:
    assert isinstance(schedule.trigger, DateTrigger)
    return schedule.trigger.run_date


def utc(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), UTC)


async def test_a_runs_window_starts_at_the_latest_local_prompt_of_its_members(
    database: Database,
) -> None:
    where = await place(
        database, {"tokyo": "Asia/Tokyo", "berlin": "Europe/Berlin", "nowhere": None}
    )
    standup_id = await add_standup(
        database, where, ["tokyo", "berlin", "nowhere"], window_minutes=60
    )
    run_id = await add_run(database, standup_id)
    # Tokyo's 09:00 is 00:00 UTC, Berlin's 08:00 UTC, a member without a zone is prompted at
    # 09:00 UTC: the latest.
    got = await times_of(database, standup_id, run_id)
    assert got == schedules.RunTimes(utc(MONDAY, 9), utc(MONDAY, 9, 48), utc(MONDAY, 10))


async def test_a_member_prompted_then_taken_off_the_standup_still_gets_a_whole_window(
    database: Database,
) -> None:
    where = await place(database, {"berlin": "Europe/Berlin", "ny": "America/New_York"})
    standup_id = await add_standup(database, where, ["berlin"], window_minutes=100)
    run_id = await add_run(database, standup_id)
    await add_prompt(database, run_id, where.members["ny"])  # not sent yet
    # New York's 09:00 (summer time since 8 March) is 13:00 UTC.
    got = await times_of(database, standup_id, run_id)
    assert got == schedules.RunTimes(utc(MONDAY, 13), utc(MONDAY, 14, 20), utc(MONDAY, 14, 40))


async def test_a_prompt_sent_late_moves_the_window_and_one_sent_early_does_not(
    database: Database,
) -> None:
    where = await place(database, {"ann": "Europe/Berlin", "bob": "Europe/Berlin"})
    standup_id = await add_standup(database, where, ["ann", "bob"], window_minutes=60)
    run_id = await add_run(database, standup_id)
    await add_prompt(database, run_id, where.members["ann"], prompted_at=utc(MONDAY, 7, 30))
    assert (await times_of(database, standup_id, run_id)).last_prompt == utc(MONDAY, 8)
    await add_prompt(database, run_id, where.members["bob"], prompted_at=utc(MONDAY, 11))
    got = await times_of(database, standup_id, run_id)
    assert got == schedules.RunTimes(utc(MONDAY, 11), utc(MONDAY, 11, 48), utc(MONDAY, 12))


async def test_a_team_zone_standups_window_follows_the_team_zone(database: Database) -> None:
    where = await place(database, {"ny": "America/New_York"})
    standup_id = await add_standup(
        database, where, ["ny"], team_timezone="Asia/Kolkata", time_of_day="10:30"
    )
    run_id = await add_run(database, standup_id)
    got = await times_of(database, standup_id, run_id)
    assert got.last_prompt == utc(MONDAY, 5)
    assert got.cutoff_at == utc(MONDAY, 9)


async def test_a_run_by_hand_is_timed_from_when_it_asked_everyone(database: Database) -> None:
    where = await place(database, {"ann": "Europe/Berlin", "bob": None})
    standup_id = await add_standup(database, where, ["ann", "bob"], window_minutes=30)
    started = utc(MONDAY, 15, 7)
    run_id = await add_run(database, standup_id, occasion="Incident review", created_at=started)
    assert await times_of(database, standup_id, run_id) == schedules.RunTimes(
        started, started + timedelta(minutes=24), started + timedelta(minutes=30)
    )
    sent = utc(MONDAY, 15, 9)
    await add_prompt(database, run_id, where.members["ann"], prompted_at=sent)
    assert (await times_of(database, standup_id, run_id)).last_prompt == sent


async def test_a_standup_with_nobody_on_it_is_timed_in_utc(database: Database) -> None:
    where = await place(database, {"ann": "Asia/Tokyo"})
    standup_id = await add_standup(database, where, [], window_minutes=60)
    run_id = await add_run(database, standup_id)
    assert (await times_of(database, standup_id, run_id)).last_prompt == utc(MONDAY, 9)


async def test_the_source_prompts_each_member_in_their_zone_and_a_team_once_in_its_zone(
    database: Database,
) -> None:
    where = await place(database, {"ann": "Europe/Berlin", "bob": "America/New_York", "cal": None})
    local_id = await add_standup(database, where, ["ann", "bob"], window_minutes=90)
    team_id = await add_standup(
        database, where, ["ann", "cal"], team_timezone="Asia/Kolkata", window_minutes=45
    )
    await add_standup(database, where, ["ann"], paused=True)
    found = await source(database)
    ann, bob = where.members["ann"], where.members["bob"]
    prompts = {k: s for k, s in found.items() if s.handler == schedules.PROMPT_HANDLER}
    assert sorted(prompts) == sorted(
        [f"standup:{local_id}:m:{ann}", f"standup:{local_id}:m:{bob}", f"standup:{team_id}:team"]
    )
    for member, zone in ((ann, "Europe/Berlin"), (bob, "America/New_York")):
        schedule = prompts[f"standup:{local_id}:m:{member}"]
        assert isinstance(schedule, LocalDateSchedule)
        assert schedule.zone == zone
        assert schedule.grace == timedelta(minutes=90)
        assert schedule.payload == {"standup_id": local_id, "member_id": member, "zone": zone}
        first = schedule.trigger.get_next_fire_time(None, NOW)
        assert first == local(MONDAY, "09:00", ZoneInfo(zone))
    team = prompts[f"standup:{team_id}:team"]
    assert isinstance(team, LocalDateSchedule)
    assert (team.zone, team.grace) == ("Asia/Kolkata", timedelta(minutes=45))
    assert team.payload == {"standup_id": team_id, "zone": "Asia/Kolkata"}
    assert team.trigger.get_next_fire_time(None, NOW) == utc(date(2026, 3, 10), 3, 30)


async def test_a_member_local_standup_with_nobody_on_it_prompts_nobody_and_stops_no_other(
    database: Database,
) -> None:
    where = await place(database, {"ann": "Europe/Berlin"})
    await add_standup(database, where, [])
    fine = await add_standup(database, where, ["ann"])
    assert sorted(await source(database)) == [f"standup:{fine}:m:{where.members['ann']}"]


async def test_no_prompts_for_a_workspace_that_removed_the_app(database: Database) -> None:
    kept = await place(database, {"ann": "Europe/Berlin"})
    gone = await place(database, {"bob": "Europe/Berlin"}, external="w2")
    kept_id = await add_standup(database, kept, ["ann"])
    await add_standup(database, gone, ["bob"])
    await add_standup(database, gone, [], team_timezone="UTC")
    async with database.transaction() as session:
        workspace = await session.get(Workspace, gone.workspace)
        assert workspace is not None
        workspace.uninstalled_at = NOW
    assert sorted(await source(database)) == [f"standup:{kept_id}:m:{kept.members['ann']}"]


async def test_an_unusable_standup_is_logged_and_the_others_are_still_scheduled(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    where = await place(database, {"ann": "Europe/Berlin", "bob": "Mars/Olympus_Mons"})
    broken_days = await add_standup(database, where, ["ann"], days=[1, 9])
    broken_zone = await add_standup(database, where, ["bob"])
    broken_team = await add_standup(database, where, [], team_timezone="Mars/Olympus_Mons")
    fine = await add_standup(database, where, ["ann"])
    with caplog.at_level(logging.ERROR, logger=schedules.__name__):
        found = await source(database)
    assert sorted(found) == [f"standup:{fine}:m:{where.members['ann']}"]
    errors = [r.getMessage() for r in caplog.records if r.name == schedules.__name__]
    assert len(errors) == 3, errors
    for standup_id in (broken_days, broken_zone, broken_team):
        assert any(e.startswith(f"standup {standup_id} has an unusable schedule: ") for e in errors)
    assert f"standup {broken_days} has an unusable schedule: standup days must be" in "".join(
        errors
    )


async def test_reminders_are_booked_for_pending_unreminded_prompts_within_their_window(
    database: Database,
) -> None:
    where = await place(database, {"ann": None, "bob": None, "cal": None, "dot": None})
    standup_id = await add_standup(database, where, list(where.members), window_minutes=120)
    run_id = await add_run(database, standup_id)
    ann, bob, cal, dot = (where.members[n] for n in ("ann", "bob", "cal", "dot"))
    due = await add_prompt(
        database, run_id, ann, prompted_at=utc(MONDAY, 9), remind_at=utc(MONDAY, 10)
    )
    late = await add_prompt(
        database, run_id, bob, prompted_at=utc(MONDAY, 9), remind_at=utc(MONDAY, 10, 58)
    )
    unsent = await add_prompt(database, run_id, cal, remind_at=utc(MONDAY, 10))
    await add_prompt(
        database,
        run_id,
        dot,
        status=PromptStatus.ANSWERED,
        prompted_at=utc(MONDAY, 9),
        remind_at=utc(MONDAY, 10),
    )
    other_run = await add_run(database, standup_id, run_date=date(2026, 3, 6))
    await add_prompt(
        database,
        other_run,
        ann,
        prompted_at=utc(MONDAY, 9),
        remind_at=utc(MONDAY, 10),
        reminded_at=utc(MONDAY, 10),
    )
    await add_prompt(database, other_run, bob, prompted_at=utc(MONDAY, 9))  # no reminder
    stale_run = await add_run(database, standup_id, run_date=date(2026, 3, 5))
    await add_prompt(
        database,
        stale_run,
        ann,
        prompted_at=NOW - timedelta(days=3),
        remind_at=NOW - timedelta(days=2),
    )
    reminders = {
        k: s for k, s in (await source(database)).items() if s.handler == schedules.REMIND_HANDLER
    }
    assert sorted(reminders) == sorted(
        f"standup:{standup_id}:remind:{p}" for p in (due, late, unsent)
    )
    for prompt_id, at, grace in (
        (due, utc(MONDAY, 10), timedelta(hours=1)),
        (late, utc(MONDAY, 10, 58), schedules.MIN_REMINDER_GRACE),
        (unsent, utc(MONDAY, 10), timedelta(minutes=120)),
    ):
        schedule = reminders[f"standup:{standup_id}:remind:{prompt_id}"]
        assert isinstance(schedule, OnceSchedule)
        assert (run_at(schedule), schedule.grace) == (at, grace)
        assert schedule.payload == {"prompt_id": prompt_id}
    # A day and 23 hours later, the latest is still looked at; at two days, none is.
    almost = await source(database, utc(MONDAY, 10, 58) + timedelta(days=2) - timedelta(seconds=1))
    assert f"standup:{standup_id}:remind:{late}" in almost
    gone = await source(database, utc(MONDAY, 10, 58) + timedelta(days=2))
    assert not [s for s in gone.values() if s.handler == schedules.REMIND_HANDLER]


async def test_an_open_run_books_its_nudge_and_its_close_and_a_closed_run_nothing(
    database: Database,
) -> None:
    where = await place(database, {"ann": None})
    nudged = await add_standup(database, where, ["ann"], window_minutes=60, channel_nudge=True)
    quiet = await add_standup(database, where, ["ann"], window_minutes=60)
    open_run = await add_run(database, nudged, closes_at=utc(MONDAY, 10, 30))
    quiet_run = await add_run(database, quiet, closes_at=utc(MONDAY, 10, 2))
    await add_run(database, nudged, run_date=date(2026, 3, 6), closes_at=NOW)
    found = {
        k: s
        for k, s in (await source(database)).items()
        if s.handler in (schedules.NUDGE_HANDLER, schedules.CLOSE_HANDLER)
    }
    base, other = f"standup:{nudged}:run:{open_run}", f"standup:{quiet}:run:{quiet_run}"
    assert sorted(found) == sorted([f"{base}:nudge", f"{base}:close", f"{other}:close"])
    nudge, close = found[f"{base}:nudge"], found[f"{base}:close"]
    assert (nudge.handler, run_at(nudge), nudge.grace) == (
        schedules.NUDGE_HANDLER,
        utc(MONDAY, 9, 48),
        timedelta(minutes=12),
    )
    assert (close.handler, run_at(close), close.grace) == (
        schedules.CLOSE_HANDLER,
        utc(MONDAY, 10),
        timedelta(minutes=30),
    )
    assert nudge.payload == close.payload == {"run_id": open_run}
    short = found[f"{other}:close"]
    assert (run_at(short), short.grace, short.payload) == (
        utc(MONDAY, 10),
        schedules.MIN_REMINDER_GRACE,
        {"run_id": quiet_run},
    )
    tiny = await add_standup(database, where, ["ann"], window_minutes=10, channel_nudge=True)
    tiny_run = await add_run(database, tiny, closes_at=utc(MONDAY, 12))
    tiny_nudge = (await source(database))[f"standup:{tiny}:run:{tiny_run}:nudge"]
    assert tiny_nudge.grace == schedules.MIN_REMINDER_GRACE


async def test_a_report_marked_out_of_date_and_left_is_swept_once_per_mark(
    database: Database,
) -> None:
    where = await place(database, {"ann": None, "bob": None})
    standup_id = await add_standup(database, where, ["ann", "bob"])
    ann, bob = where.members["ann"], where.members["bob"]
    marked = NOW - timedelta(minutes=3, microseconds=250)
    by_run = await add_run(database, standup_id, dirty_since=marked)
    fresh = await add_run(database, standup_id, run_date=date(2026, 3, 6), dirty_since=NOW)
    by_prompt = await add_run(database, standup_id, run_date=date(2026, 3, 5))
    await add_prompt(
        database, by_prompt, ann, report_dirty=True, updated_at=NOW - timedelta(seconds=5)
    )
    await add_prompt(
        database, by_prompt, bob, report_dirty=True, updated_at=NOW - timedelta(seconds=4)
    )
    # A prompt marked later than the run's own mark: the earlier one counts.
    await add_prompt(
        database, by_run, ann, report_dirty=True, updated_at=marked + timedelta(minutes=1)
    )
    # Marked exactly SWEEP_AFTER ago, on the run alone: swept.
    only_run = await add_run(
        database, standup_id, run_date=date(2026, 3, 4), dirty_since=NOW - schedules.SWEEP_AFTER
    )
    # A prompt that is not marked, however old its last change: nothing to sweep.
    clean = await add_run(database, standup_id, run_date=date(2026, 3, 3))
    await add_prompt(database, clean, ann, updated_at=NOW - timedelta(hours=1))
    await add_prompt(database, fresh, ann, report_dirty=True, updated_at=NOW)
    # A run closed long ago: its forgotten marks are not swept any more.
    old = await add_run(
        database, standup_id, run_date=date(2026, 2, 2), closes_at=NOW - timedelta(days=2)
    )
    await add_prompt(database, old, ann, report_dirty=True, updated_at=NOW - timedelta(days=3))
    await add_prompt(database, old, bob, report_dirty=False, updated_at=NOW - timedelta(days=3))
    sweeps = [
        s for s in (await source(database)).values() if s.handler == schedules.REFRESH_HANDLER
    ]
    expected = {
        by_run: (f"standup:run:{by_run}:refresh@2026-03-09T05:56:59.999750Z", marked),
        only_run: (
            f"standup:run:{only_run}:refresh@2026-03-09T05:59:55.000000Z",
            NOW - timedelta(seconds=5),
        ),
        by_prompt: (
            f"standup:run:{by_prompt}:refresh@2026-03-09T05:59:55.000000Z",
            NOW - timedelta(seconds=5),
        ),
    }
    assert sorted(s.key for s in sweeps) == sorted(k for k, _ in expected.values())
    for schedule in sweeps:
        run_id = schedule.payload["run_id"]
        key, since = expected[run_id]
        assert schedule.key == key
        assert isinstance(schedule, OnceSchedule)
        assert run_at(schedule) == since + schedules.SWEEP_AFTER
        assert schedule.grace == schedules.SWEEP_GRACE
        assert schedule.payload == {"run_id": run_id}


async def test_a_sweeps_key_is_in_utc_whatever_the_hosts_zone(database: Database) -> None:
    """Replicas on hosts set to different zones must claim a sweep under one key, or it would
    run once per zone."""
    where = await place(database, {"ann": None})
    standup_id = await add_standup(database, where, ["ann"])
    run_id = await add_run(database, standup_id, dirty_since=NOW - timedelta(minutes=1))
    expected = [f"standup:run:{run_id}:refresh@2026-03-09T05:59:00.000000Z"]
    before = os.environ.get("TZ")
    try:
        for host_zone in ("UTC", "Asia/Kolkata", "America/New_York"):
            os.environ["TZ"] = host_zone
            host_clock.tzset()
            found = await source(database)
            assert [k for k, s in found.items() if s.handler == schedules.REFRESH_HANDLER] == (
                expected
            ), host_zone
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        host_clock.tzset()
