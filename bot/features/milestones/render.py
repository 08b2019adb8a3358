"""What milestones say: the list, a countdown post, the overdue DM, the replies to add and
edit. People in a list are plain names (a private list pings nobody); a countdown mentions the
owner, whom it is meant for."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from bot.chat import (
    Bold,
    ChannelMention,
    Context,
    Header,
    Message,
    Section,
    Text,
    UserMention,
    marked,
    message,
    text,
)
from bot.features.milestones.dates import describe_countdown, relative, show_day
from bot.timezones import zone
from storage.milestones import Milestone
from storage.models import Member

RECENT_DONE = timedelta(days=30)


def today_in(milestone: Milestone, now: datetime) -> date:
    return now.astimezone(zone(milestone.timezone)).date()


def name_of(member: Member | None) -> str:
    if member is None:
        return "nobody"
    return member.display_name or member.platform_user_id


def added_reply(
    milestone: Milestone, zone_source: str, owner: Member | None, now: datetime, where: Text
) -> list[Text]:
    due = f"{show_day(milestone.due_on)}, {relative(milestone.due_on, today_in(milestone, now))}"
    return [
        text("Milestone ", Bold(milestone.name), f" added: due {due}."),
        text(f"The date is in {milestone.timezone} ({zone_source})."),
        text(
            f"Countdown {describe_countdown(list(milestone.countdown_days))} at 09:00 there, in "
            if milestone.countdown_days
            else "No countdown; the celebration goes to ",
            where,
            f"; owner {name_of(owner)}.",
        ),
        marked(f"When it ships: `/milestone done {milestone.name}`."),
    ]


def list_message(
    open_ones: list[tuple[Milestone, Member | None]],
    done_ones: list[tuple[Milestone, Member | None]],
    now: datetime,
    viewer_zone: str,
    channels: dict[str, str],
) -> Message:
    if not open_ones and not done_ones:
        return message(
            marked('No milestones yet. Add one: `/milestone add "Launch v2" 2027-01-15 #launches`.')
        )
    blocks: list[Header | Section | Context] = [Header("Milestones")]
    overdue = [(m, o) for m, o in open_ones if m.due_on < today_in(m, now)]
    upcoming = [(m, o) for m, o in open_ones if m.due_on >= today_in(m, now)]
    for milestone, owner in overdue:
        late = relative(milestone.due_on, today_in(milestone, now))
        blocks.append(
            Section(
                text(
                    "⚠ ",
                    Bold(milestone.name),
                    f": OVERDUE, was due {show_day(milestone.due_on)} ({late}); ",
                    f"owner {name_of(owner)}",
                )
            )
        )
    for milestone, owner in upcoming:
        when = relative(milestone.due_on, today_in(milestone, now))
        blocks.append(
            Section(
                text(
                    "• ",
                    Bold(milestone.name),
                    f": due {show_day(milestone.due_on)}, {when}; owner {name_of(owner)}; ",
                    ChannelMention(
                        milestone.channel_id or "", channels.get(milestone.channel_id or "", "")
                    ),
                )
            )
        )
    if done_ones:
        blocks.append(Section(text(Bold("Done lately"))))
    for milestone, done_by in done_ones:
        assert milestone.done_at is not None
        on = show_day(milestone.done_at.astimezone(zone(viewer_zone)).date())
        by = name_of(done_by) if done_by is not None else "a webhook"
        blocks.append(Section(text("✓ ", Bold(milestone.name), f": done {on} by {by}")))
    blocks.append(
        Context(
            text(
                f"{len(open_ones)} open ({len(overdue)} overdue). Dates are in each "
                "milestone's zone; done dates in yours."
            )
        )
    )
    return message(*blocks, summary="Milestones")


def countdown(milestone: Milestone, days: int, owner: Member | None) -> Message:
    left = "1 day" if days == 1 else f"{days} days"
    who = (
        text(" Owner: ", UserMention(owner.platform_user_id, name_of(owner)), ".")
        if owner is not None
        else text()
    )
    return message(
        Section(
            text(
                f"⏳ {left} to ",
                Bold(milestone.name),
                f": due {show_day(milestone.due_on)} ({milestone.timezone}).",
            )
            + who
        ),
        Context(marked(f"Shipped already? `/milestone done {milestone.name}`")),
        summary=f"{left} to {milestone.name}",
    )


def overdue_dm(milestone: Milestone) -> Message:
    return message(
        Section(
            text(
                Bold(milestone.name),
                f" was due {show_day(milestone.due_on)} ({milestone.timezone}) and is not "
                "marked done. You own it:",
            )
        ),
        Section(
            marked(
                f"Done? `/milestone done {milestone.name}`. Later? "
                f"`/milestone edit {milestone.name} --date in 2 weeks`. Not happening? "
                f"`/milestone cancel {milestone.name}`."
            )
        ),
        summary=f"{milestone.name} is overdue",
    )
