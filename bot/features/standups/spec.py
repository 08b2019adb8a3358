"""The ``/standup`` command, declared once for every platform and for help."""

from __future__ import annotations

from bot.commands.spec import CommandSpec, OptionSpec, OptionType, SubcommandSpec

NAME = OptionSpec("name", OptionType.TEXT, "the standup's name, e.g. Daily standup")
OPTIONAL_NAME = OptionSpec(
    "name", OptionType.TEXT, "the standup's name (all of yours when left out)", required=False
)

STANDUP = CommandSpec(
    name="standup",
    description="Async standups: DMs at each member's local time, reports in a channel.",
    subcommands=(
        SubcommandSpec("help", "Explain the standup commands."),
        SubcommandSpec("setup", "Create a standup (opens a form)."),
        SubcommandSpec("list", "List the standups of this workspace."),
        SubcommandSpec(
            "edit",
            "Change a standup (owner, team leads, admins).",
            (NAME,),
            example="/standup edit Daily standup",
        ),
        SubcommandSpec("pause", "Stop sending a standup's prompts for now.", (NAME,)),
        SubcommandSpec("resume", "Start a paused standup again.", (NAME,)),
        SubcommandSpec("delete", "Delete a standup and its history (asks first).", (NAME,)),
        SubcommandSpec(
            "run",
            "Ask every participant now, in one extra run (scheduled prompts still come).",
            (NAME,),
        ),
        SubcommandSpec("skip", "Skip today's standup (yours only).", (OPTIONAL_NAME,)),
        SubcommandSpec(
            "ooo",
            "Out of office: no prompts, shown as away; off ends it.",
            (OptionSpec("dates", OptionType.STRING, "YYYY-MM-DD..YYYY-MM-DD, a date, or off"),),
            example="/standup ooo 2026-12-24..2026-12-31",
        ),
        SubcommandSpec(
            "history",
            "Past answers of a member (you by default) over the last DAYS days (7).",
            (
                OptionSpec("who", OptionType.MEMBER, "a member, e.g. @bob", required=False),
                OptionSpec("days", OptionType.INTEGER, "how many days back", required=False),
            ),
            example="/standup history @bob 14",
        ),
        SubcommandSpec(
            "stats", "Participation per member and for the team, last 4 weeks.", (OPTIONAL_NAME,)
        ),
    ),
)
