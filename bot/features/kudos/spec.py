"""The ``/kudos`` command, declared once for every platform and for help.

``give`` is the default subcommand: on Slack and the console ``/kudos @bob @carol Shipped the
export on time #ownership`` gives kudos, and a bare ``/kudos`` opens the form. Discord users pick
``/kudos give`` and type the same line into its ``line`` option (or use "Give kudos" on a
member's Apps menu).
"""

from __future__ import annotations

from bot.commands.spec import CommandSpec, OptionSpec, OptionType, Permission, SubcommandSpec

GIVE_EXAMPLE = "/kudos @bob @carol Shipped the export on time #ownership"
LINE_USAGE = "@who [@who...] REASON [#value] [--private] [--channel #channel]"

KUDOS = CommandSpec(
    name="kudos",
    description="Kudos: thank teammates for their work, with your company values.",
    subcommands=(
        SubcommandSpec(
            "give",
            "Give kudos: @who... REASON [#value] [--private]; a form when the line is empty.",
            (
                OptionSpec(
                    "line",
                    OptionType.TEXT,
                    "@who, then why, then an optional #value; --private: only they see it",
                    required=False,
                ),
            ),
            example=GIVE_EXAMPLE,
        ),
        SubcommandSpec("left", "How many kudos you can still give today, and when that resets."),
        SubcommandSpec(
            "board",
            "Kudos received and given this week, month or quarter (per value with #value).",
            (
                OptionSpec(
                    "period", OptionType.STRING, "week (default), month or quarter", required=False
                ),
                OptionSpec("value", OptionType.STRING, "only kudos of this #value", required=False),
            ),
            example="/kudos board month #craft",
        ),
        SubcommandSpec(
            "history",
            "Kudos a member (you by default) received and gave, newest first.",
            (OptionSpec("who", OptionType.MEMBER, "the member", required=False),),
            example="/kudos history @bob",
        ),
        SubcommandSpec("optout", "Leave the kudos boards: you appear nowhere ranked."),
        SubcommandSpec("optin", "Appear on the kudos boards again."),
        SubcommandSpec(
            "settings",
            "Show or change the kudos rules: quota, weekly, values, channel, where.",
            (
                OptionSpec(
                    "setting",
                    OptionType.CHOICE,
                    "what to change",
                    required=False,
                    choices=("quota", "weekly", "values", "channel", "where"),
                ),
                OptionSpec("to", OptionType.TEXT, "the new value", required=False),
            ),
            permission=Permission.ADMIN,
            example="/kudos settings values #ownership #craft #helpfulness",
        ),
        SubcommandSpec("help", "Explain the kudos commands and the rules."),
    ),
    default="give",
)
