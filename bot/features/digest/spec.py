"""The ``/digest`` command, declared once for every platform and for help.

Setting digests up, changing, deleting and previewing them is for team leads and admins (a
digest names blockers and people across teams); listing them is for everyone."""

from __future__ import annotations

from bot.commands.spec import CommandSpec, OptionSpec, OptionType, Permission, SubcommandSpec

NAME = OptionSpec("digest", OptionType.STRING, 'the digest\'s name ("quoted" when it has spaces)')
NAME_REST = OptionSpec("digest", OptionType.TEXT, "the digest's name")
LINE = OptionSpec(
    "line",
    OptionType.TEXT,
    '"Name" --teams Daily, Data pipeline --channel #leads ... (leave it out for the form)',
    required=False,
)
EDIT_LINE = OptionSpec(
    "line",
    OptionType.TEXT,
    "only what changes: --day fri --sections blockers, signals ... (none: the form)",
    required=False,
)
SETUP_EXAMPLE = (
    '/digest setup "Leadership" --teams Daily, Data pipeline --channel #leads --day mon '
    "--time 09:00 --timezone Europe/Berlin --sections standups, blockers, pulse, kudos, signals "
    "--leaders @alice"
)

DIGEST = CommandSpec(
    name="digest",
    description="A weekly digest of teams for leadership: standups, blockers, pulse, kudos, "
    "signals.",
    subcommands=(
        SubcommandSpec(
            "setup",
            "Create a weekly digest: a form, or one line with --options.",
            (LINE,),
            permission=Permission.TEAM_LEAD,
            example=SETUP_EXAMPLE,
        ),
        SubcommandSpec(
            "edit",
            "Change a digest: a form, or one line with only the --options to change.",
            (NAME, EDIT_LINE),
            permission=Permission.TEAM_LEAD,
            example="/digest edit Leadership --day fri --time 16:00",
        ),
        SubcommandSpec("list", "List this workspace's digests and when each goes out next."),
        SubcommandSpec(
            "preview",
            "Show a digest as it would go out now (only to you).",
            (NAME_REST,),
            permission=Permission.TEAM_LEAD,
            example="/digest preview Leadership",
        ),
        SubcommandSpec(
            "delete",
            "Delete a digest.",
            (NAME_REST,),
            permission=Permission.TEAM_LEAD,
            example="/digest delete Leadership",
        ),
        SubcommandSpec("help", "Explain the digest commands, the sections and the signals."),
    ),
)
