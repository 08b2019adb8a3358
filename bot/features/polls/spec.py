"""The ``/poll`` command, declared once for every platform and for help.

``create`` is the default subcommand: on Slack and the console ``/poll "Ship Friday?" "Yes" "No"``
is ``/poll create "Ship Friday?" "Yes" "No"``, and a bare ``/poll`` opens the form. Discord users
pick ``/poll create`` and type the same line into its ``line`` option (or leave it out for the
form).
"""

from __future__ import annotations

from bot.commands.spec import CommandSpec, OptionSpec, OptionType, SubcommandSpec

LINE = OptionSpec(
    "line",
    OptionType.TEXT,
    'the poll in one line: "Question?" "Option" "Option" [--anonymous] [--closes 2d] ...',
    required=False,
)
POLL_ID = OptionSpec("id", OptionType.STRING, "the poll's number, as /poll list shows it")
CLOSES = OptionSpec(
    "closes",
    OptionType.TEXT,
    'the new deadline: 2d, 3h, 30m, YYYY-MM-DD or "YYYY-MM-DD HH:MM" (your time)',
    required=False,
)

CREATE_EXAMPLE = '/poll "Ship Friday?" "Yes" "No" --anonymous --closes 2d'

POLL = CommandSpec(
    name="poll",
    description="Polls: choices, 1-5 scales, eNPS or open answers; named or anonymous.",
    subcommands=(
        SubcommandSpec(
            "create",
            "Create a poll in this channel: one line, or a form when the line is empty.",
            (LINE,),
            example=CREATE_EXAMPLE,
        ),
        SubcommandSpec("list", "List the open polls of this channel."),
        SubcommandSpec(
            "results",
            "Show you a poll's results, when its settings allow it.",
            (POLL_ID,),
            example="/poll results 12",
        ),
        SubcommandSpec(
            "close",
            "Close a poll now (its creator or an admin).",
            (POLL_ID,),
            example="/poll close 12",
        ),
        SubcommandSpec(
            "reopen",
            "Reopen a closed poll, optionally with a new deadline (its creator or an admin).",
            (POLL_ID, CLOSES),
            example="/poll reopen 12 1d",
        ),
        SubcommandSpec(
            "remind",
            "DM who has not answered yet, now (its creator or an admin; once an hour).",
            (POLL_ID,),
            example="/poll remind 12",
        ),
        SubcommandSpec("help", "Explain the poll commands and the one-line syntax."),
    ),
    default="create",
)
