"""The ``/pulse`` command, declared once for every platform and for help."""

from __future__ import annotations

from bot.commands.spec import CommandSpec, OptionSpec, OptionType, Permission, SubcommandSpec

TEAM = OptionSpec("team", OptionType.TEXT, "the team's name, e.g. Platform")

PULSE = CommandSpec(
    name="pulse",
    description="Recurring anonymous team pulse checks, pooled results and a weekly digest.",
    subcommands=(
        SubcommandSpec("help", "Explain the pulse commands."),
        SubcommandSpec(
            "setup",
            "Create a team's pulse check (opens a form).",
            permission=Permission.TEAM_LEAD,
        ),
        SubcommandSpec(
            "edit",
            "Change a team's pulse: members, schedule, threshold, digest (opens a form).",
            (TEAM,),
            example="/pulse edit Platform",
        ),
        SubcommandSpec(
            "questions",
            "Edit the team's question bank, one question per line (opens a form).",
            (TEAM,),
            example="/pulse questions Platform",
        ),
        SubcommandSpec("pause", "Stop sending a team's pulse rounds and digests for now.", (TEAM,)),
        SubcommandSpec("resume", "Start a paused pulse again.", (TEAM,)),
        SubcommandSpec("run", "Send a team's next pulse round now.", (TEAM,)),
        SubcommandSpec("list", "List the pulse checks of this workspace."),
        SubcommandSpec("results", "Show a team's latest pulse results (only to you).", (TEAM,)),
        SubcommandSpec("digest", "Post a team's weekly digest in its channel now.", (TEAM,)),
    ),
)
