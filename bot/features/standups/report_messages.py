"""What a report says: the parent message (counts and lists of people), each person's or each
question's answers, and the channel nudge. User text is always Plain (invariant 5).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from bot.chat import (
    Bold,
    Context,
    Divider,
    Header,
    Inline,
    Italic,
    Message,
    Plain,
    Section,
    Text,
    UserMention,
    message,
    text,
)
from bot.features.standups.roster import WAITING, Entry, Roster
from storage.models import (
    PromptStatus,
    Standup,
    StandupRun,
)

MOODS = ("very bad", "bad", "okay", "good", "great")

# People named in one list of the report ("Not answered yet: ..."); the rest are counted.
NAMES_SHOWN = 30


def day_label(day: date) -> str:
    """``Mon 9 Mar``."""
    return f"{day:%a} {day.day} {day:%b}"


def answer_text(question: dict[str, Any], raw: str, blocker_id: int | None = None) -> Text:
    """An answer as shown in reports and summaries: always Plain (user text); a blocker
    answer that is a tracked blocker ends with its number (its card has the same)."""
    if blocker_id is not None and raw:
        return text(Plain(raw), Italic(f" (blocker #{blocker_id})"))
    if not raw:
        return text(Italic("no answer"))
    if question.get("kind") == "mood" and raw.isdigit() and 1 <= int(raw) <= len(MOODS):
        return text(Plain(f"{raw}/5 ({MOODS[int(raw) - 1]})"))
    return text(Plain(raw))


def _names(entries: Sequence[Entry], tag: bool) -> Text:
    """A list of people, the first ``NAMES_SHOWN`` by name and the rest as a count: a report
    for thousands stays readable (and inside Slack's and Discord's message limits), and a
    ``tag_missing`` standup never pings a crowd."""
    parts: list[Inline | str] = []
    for n, entry in enumerate(entries[:NAMES_SHOWN]):
        if n:
            parts.append(", ")
        if tag:
            parts.append(UserMention(entry.member.platform_user_id, entry.name))
        else:
            parts.append(Plain(entry.name))
    if len(entries) > NAMES_SHOWN:
        parts.append(f" and {len(entries) - NAMES_SHOWN:,} more")
    return text(*parts)


def title(standup: Standup, run: StandupRun) -> str:
    by_hand = " (run by hand)" if run.occasion else ""
    return f"{standup.name} · {day_label(run.run_date)} {run.run_date.year}{by_hand}"


def person_sections(standup: Standup, entry: Entry) -> list[Section]:
    lines: list[Text | Inline | str] = [Bold(entry.name)]
    for i, question in enumerate(standup.questions):
        lines += [
            "\n",
            Bold(question["text"]),
            "\n",
            answer_text(question, entry.answers.get(i, ""), entry.blockers.get(i)),
        ]
    return [Section(text(*lines))]


def question_sections(standup: Standup, index: int, answered: Sequence[Entry]) -> list[Section]:
    question = standup.questions[index]
    lines: list[Text | Inline | str] = [Bold(question["text"])]
    for entry in answered:
        answer = answer_text(question, entry.answers.get(index, ""), entry.blockers.get(index))
        lines += ["\n", Bold(entry.name), ": ", answer]
    return [Section(text(*lines))]


def parent_message(standup: Standup, run: StandupRun, roster: Roster, *, closed: bool) -> Message:
    answered = roster.answered
    blocks: list[Any] = [
        Header(title(standup, run)),
        Section(text(f"Heard from {len(answered)} of {len(roster.expected)}.")),
    ]
    away = roster.having(PromptStatus.AWAY)
    if away:
        blocks.append(Section(text("Away: ", _names(away, tag=False))))
    skipped = roster.having(PromptStatus.SKIPPED)
    if skipped:
        blocks.append(Section(text("Skipped: ", _names(skipped, tag=False))))
    missing = roster.missing
    if missing:
        label = "Not answered: " if closed else "Not answered yet: "
        blocks.append(Section(text(label, _names(missing, tag=standup.tag_missing))))
    unreachable = roster.unreachable
    if unreachable:
        # Never tagged: the prompt did not reach them, a ping would not help.
        blocks.append(
            Section(text("Unreachable (I can't DM them): ", _names(unreachable, tag=False)))
        )
    waiting = roster.having(WAITING)
    if waiting:
        # Not tagged: their prompt has not even gone out.
        blocks.append(
            Section(text("Asked later, at their local time: ", _names(waiting, tag=False)))
        )
    if not answered and closed:
        blocks.append(Context(text("No one has answered this time.")))
    if standup.report_layout == "inline":
        if answered:
            blocks.append(Divider())
        if standup.group_by == "question":
            for i in range(len(standup.questions)):
                if answered:
                    blocks.extend(question_sections(standup, i, answered))
        else:
            for entry in answered:
                blocks.extend(person_sections(standup, entry))
    elif answered:
        blocks.append(Context(text("Answers are in the thread.")))
    return message(*blocks, summary=f"{title(standup, run)}: heard from {len(answered)}")


def nudge_message(standup: Standup, run: StandupRun, missing: Sequence[Entry]) -> Message:
    """The channel nudge: names only those still missing; no "you", so those who answered
    don't think it is for them."""
    return message(
        text(
            f"{standup.name} ({day_label(run.run_date)}) is still waiting for: ",
            _names(missing, tag=standup.tag_missing),
            ".",
        )
    )
