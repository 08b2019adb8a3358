"""The ``/blocker`` command, declared once for every platform and for help.

``add`` takes one line (``TEXT [--area AREA] [--waiting-on @who|AREA] [--severity S]``) or,
with no line, opens a form. On Discord the line is the ``line`` option of ``/blocker add``.
"""

from __future__ import annotations

from bot.commands.spec import CommandSpec, OptionSpec, OptionType, SubcommandSpec

BLOCKER_ID = OptionSpec("id", OptionType.STRING, "the blocker's number, as /blocker list shows it")

ADD_LINE = OptionSpec(
    "line",
    OptionType.TEXT,
    "what blocks you [--area AREA] [--waiting-on @who|AREA] [--severity low|normal|high|critical]",
    required=False,
)
ADD_EXAMPLE = (
    "/blocker add Need the labeling export --area data pipeline --waiting-on labeling "
    "--severity high"
)

BLOCKER = CommandSpec(
    name="blocker",
    description="Blockers: tracked, with an owner, an age and an escalation ladder.",
    subcommands=(
        SubcommandSpec(
            "add",
            "Report a blocker: one line, or a form when the line is empty.",
            (ADD_LINE,),
            example=ADD_EXAMPLE,
        ),
        SubcommandSpec(
            "list",
            "List open blockers: mine, waiting-on-me, an area's, or all.",
            (
                OptionSpec(
                    "filter",
                    OptionType.TEXT,
                    "mine, waiting-on-me, an area's name, or all (default: all)",
                    required=False,
                ),
            ),
            example="/blocker list waiting-on-me",
        ),
        SubcommandSpec(
            "show",
            "Show a blocker with its timeline and age.",
            (BLOCKER_ID,),
            example="/blocker show 7",
        ),
        SubcommandSpec(
            "ack",
            "Acknowledge a blocker you can unblock (pauses its escalation).",
            (BLOCKER_ID,),
            example="/blocker ack 7",
        ),
        SubcommandSpec(
            "resolve",
            "Mark a blocker resolved (stops its escalation).",
            (BLOCKER_ID,),
            example="/blocker resolve 7",
        ),
        SubcommandSpec(
            "reopen",
            "Reopen a resolved or cancelled blocker.",
            (BLOCKER_ID,),
            example="/blocker reopen 7",
        ),
        SubcommandSpec(
            "snooze",
            "Pause a blocker's escalation until a time (your time zone).",
            (
                BLOCKER_ID,
                OptionSpec(
                    "until",
                    OptionType.TEXT,
                    'tomorrow, monday, next business day, YYYY-MM-DD or "YYYY-MM-DD HH:MM"',
                ),
            ),
            example="/blocker snooze 7 next business day",
        ),
        SubcommandSpec(
            "reassign",
            "Change what a blocker waits on: a member or an area.",
            (BLOCKER_ID, OptionSpec("to", OptionType.TEXT, "@who or an area's name")),
            example="/blocker reassign 7 @dana",
        ),
        SubcommandSpec(
            "note",
            "Add a note to a blocker's timeline.",
            (BLOCKER_ID, OptionSpec("text", OptionType.TEXT, "the note")),
            example="/blocker note 7 Asked infra in #help-infra",
        ),
        SubcommandSpec(
            "cancel",
            "Cancel a blocker that no longer matters (its reporter or an admin).",
            (BLOCKER_ID,),
            example="/blocker cancel 7",
        ),
        SubcommandSpec(
            "stats",
            "Opened, resolved, time to acknowledge and to resolve, the oldest open ones.",
            (
                OptionSpec(
                    "line", OptionType.TEXT, "[AREA] [--weeks N] (default: 4 weeks)", required=False
                ),
            ),
            example="/blocker stats data pipeline --weeks 8",
        ),
        SubcommandSpec("help", "Explain the blocker commands."),
    ),
)
