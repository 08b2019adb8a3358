"""The milestone subcommands, added to ``/milestone`` (registered by the hooks feature) with
``Core.extend_command``: declared once for every platform and for help."""

from __future__ import annotations

from bot.commands.spec import OptionSpec, OptionType, SubcommandSpec
from bot.features.milestones.inputs import ADD_EXAMPLE

SUBCOMMANDS = (
    SubcommandSpec(
        "add",
        "Add a milestone: NAME DATE [#channel] [--area A] [--owner @who]; a form when empty.",
        (
            OptionSpec(
                "line",
                OptionType.TEXT,
                "NAME DATE [#channel] [--area A] [--owner @who] [--with @a @b] [--countdown 7,1]",
                required=False,
            ),
        ),
        example=ADD_EXAMPLE,
    ),
    SubcommandSpec(
        "list", "Open milestones (days left, overdue ones marked) and those done lately."
    ),
    SubcommandSpec(
        "edit",
        "Change a milestone: NAME alone opens a form; or --date, --name, --countdown ...",
        (
            OptionSpec(
                "line",
                OptionType.TEXT,
                "NAME [--date D] [--name NEW] [--channel #c] [--owner @who] [--countdown 14,7,1]",
            ),
        ),
        example='/milestone edit "Launch v2" --date 2027-01-22 --countdown 14,7,1',
    ),
    SubcommandSpec(
        "done",
        "Mark a milestone done: its channel gets the celebration.",
        (OptionSpec("name", OptionType.TEXT, "the milestone's name"),),
        example="/milestone done Launch v2",
    ),
    SubcommandSpec(
        "cancel",
        "Cancel a milestone (asks first); its countdowns stop and its name is free again.",
        (OptionSpec("name", OptionType.TEXT, "the milestone's name"),),
        example="/milestone cancel Launch v2",
    ),
)
