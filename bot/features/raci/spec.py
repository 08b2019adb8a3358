"""The ``/raci`` command, declared once for every platform and for help.

Managing the matrix (setup, edit, delete) is for team leads and admins; reading it (show, who)
is for everyone. Other features add their own subcommands with ``Core.extend_command``
(``/raci policy`` from escalation, ``/raci webhook`` from webhooks).
"""

from __future__ import annotations

from bot.commands.spec import CommandSpec, OptionSpec, OptionType, Permission, SubcommandSpec

AREA = OptionSpec("area", OptionType.STRING, 'the area\'s name ("quoted" when it has spaces)')
AREA_REST = OptionSpec("area", OptionType.TEXT, "the area's name")
SHOW_AREA = OptionSpec(
    "area", OptionType.TEXT, "one area's name; leave it out for all", required=False
)
LINE = OptionSpec(
    "line",
    OptionType.TEXT,
    '"Name" --responsible @ana @data-eng --accountable @bob ... (leave it out for the form)',
    required=False,
)
EDIT_LINE = OptionSpec(
    "line",
    OptionType.TEXT,
    "only what changes: --accountable @bob --keywords etl, airflow ... (none: the form)",
    required=False,
)

SETUP_EXAMPLE = (
    '/raci setup "Data pipeline" --responsible @ana @data-eng --accountable @bob '
    "--informed #data --channel #data-blockers --timezone Europe/Berlin --hours 09:00-17:00 "
    "--holidays DE BE --keywords etl, airflow"
)

RACI = CommandSpec(
    name="raci",
    description="The RACI matrix: who is Responsible, Accountable, Consulted, Informed per area.",
    subcommands=(
        SubcommandSpec(
            "setup",
            "Create an area: a form, or one line with --options.",
            (LINE,),
            permission=Permission.TEAM_LEAD,
            example=SETUP_EXAMPLE,
        ),
        SubcommandSpec(
            "edit",
            "Change an area: a form, or one line with only the --options to change.",
            (AREA, EDIT_LINE),
            permission=Permission.TEAM_LEAD,
            example='/raci edit "Data pipeline" --accountable @carol',
        ),
        SubcommandSpec(
            "show",
            "Show the matrix (areas by people, R/A/C/I), or one area in full.",
            (SHOW_AREA,),
            example="/raci show",
        ),
        SubcommandSpec(
            "who",
            "Who is Responsible, Accountable, Consulted and Informed for an area.",
            (AREA_REST,),
            example="/raci who data pipeline",
        ),
        SubcommandSpec(
            "delete",
            "Delete an area (asks first; its open blockers must be moved or closed).",
            (AREA_REST,),
            permission=Permission.TEAM_LEAD,
            example="/raci delete labeling",
        ),
        SubcommandSpec("help", "Explain the RACI commands and the one-line options."),
    ),
)
