"""The subcommands celebrations add to ``/syncup`` (``Core.extend_command``)."""

from __future__ import annotations

from bot.commands.spec import OptionSpec, OptionType, SubcommandSpec

SETTINGS = ("streaks", "birthdays", "anniversaries", "streak", "channel", "optout", "optin")

SUBCOMMANDS = (
    SubcommandSpec(
        "birthday",
        "Your birthday as MM-DD (never the year), celebrated at 09:00 your time; off removes it.",
        (OptionSpec("date", OptionType.STRING, "MM-DD, e.g. 03-14, or off"),),
        example="/syncup birthday 03-14",
    ),
    SubcommandSpec(
        "started",
        "The day you started (YYYY-MM-DD), for work anniversaries; off removes it.",
        (OptionSpec("date", OptionType.STRING, "YYYY-MM-DD, e.g. 2021-09-01, or off"),),
        example="/syncup started 2021-09-01",
    ),
    SubcommandSpec(
        "celebrations",
        "Celebration settings; optout/optin; admins: streaks, birthdays, anniversaries, "
        "streak, channel.",
        (
            OptionSpec(
                "setting", OptionType.CHOICE, "what to change", required=False, choices=SETTINGS
            ),
            OptionSpec("to", OptionType.TEXT, "on, off, a number or a #channel", required=False),
        ),
        example="/syncup celebrations streak 30",
    ),
)
