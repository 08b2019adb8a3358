"""Charts and multi-selects on the console, through the real App (core, outbox, delivery worker):
a chart is one line, its title and the path of its PNG (the message says its figures in words);
several labels choose several options of a multi-select, up to its limit."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

from adapters.console import ConsoleAdapter
from adapters.console.render import ChartFiles, Renderer, chart_file_name
from bot.app import App
from bot.charts import render_png
from bot.chat import (
    Actions,
    Button,
    Chart,
    ChartSeries,
    Choice,
    Response,
    Select,
    message,
    reply,
)
from bot.commands.spec import CommandSpec, SubcommandSpec
from bot.config import ConsoleSection, DatabaseSection, Settings
from bot.core import Context
from bot.events import ActionInvocation

START = "2026-03-09T12:00:00+00:00"
RESULTS = Chart(
    "Pace: this week vs last",
    ("Sustainable", "Too fast"),
    (ChartSeries("This week", (62.0, 38.0)), ChartSeries("Last week", (50.0, None))),
    "Sustainable: 62% this week, 50% last week. Too fast: 38% this week, no answer last week.",
    unit="%",
)
TREND = Chart(
    "eNPS by week",
    ("2 Mar", "9 Mar", "16 Mar"),
    (ChartSeries("eNPS", (-10.0, None, 25.0)),),
    "eNPS went from -10 on 2 March to 25 on 16 March (no poll on 9 March).",
    style="line",
)
TOPICS = Select(
    "probe:topics",
    (Choice("Roadmap", "roadmap"), Choice("Hiring", "hiring"), Choice("On-call", "oncall")),
    "Topics for Friday",
    max_selected=2,
)
PROBE = CommandSpec(
    "probe",
    "Test-only command.",
    (SubcommandSpec("results", "Post poll results."), SubcommandSpec("ask", "Ask for topics.")),
)


def install(app: App, seen: list[ActionInvocation]) -> None:
    async def results(ctx: Context, args: dict[str, Any]) -> Response:
        await ctx.post("team", message("Poll closed.", RESULTS, TREND))
        return None

    async def ask(ctx: Context, args: dict[str, Any]) -> Response:
        await ctx.post("team", message("Pick topics.", Actions((Button("Skip", "probe:skip"),))))
        await ctx.post("team", message("Or these.", Actions((TOPICS,))))
        return None

    async def action(ctx: Context, event: ActionInvocation) -> Response:
        seen.append(event)
        return reply(f"Noted: {', '.join(event.values) or event.value}.")

    app.core.add_command(PROBE, {"results": results, "ask": ask})
    app.core.add_action("probe", action)


async def run(tmp_path: Path, lines: list[str]) -> tuple[str, list[ActionInvocation], Path]:
    charts = tmp_path / "charts"
    settings = Settings.model_construct(
        database=DatabaseSection(url=f"sqlite+aiosqlite:///{tmp_path / 'syncup.db'}"),
        console=ConsoleSection(member="alice", start=START, charts_dir=str(charts)),
    )
    out = io.StringIO()
    app = App(settings, ConsoleAdapter(settings, lines=lines, out=out))
    seen: list[ActionInvocation] = []
    install(app, seen)
    assert await app.run() == 0
    return out.getvalue(), seen, charts


async def test_a_chart_is_one_line_with_its_picture_never_text_bars_or_alt_text(
    tmp_path: Path,
) -> None:
    output, _, charts = await run(tmp_path, ["/probe results"])
    bar_file = charts / chart_file_name(RESULTS)
    line_file = charts / chart_file_name(TREND)
    assert output == (
        "alice> /probe results\n"
        "#1 → #team:\n"
        "  Poll closed.\n"
        f"  [chart: Pace: this week vs last; picture: {bar_file}]\n"
        f"  [chart: eNPS by week; picture: {line_file}]\n"
    )
    for path, chart in ((bar_file, RESULTS), (line_file, TREND)):
        image = Image.open(path)
        image.verify()
        assert Image.open(path).size[0] == 800
        assert path.read_bytes() == render_png(chart)
    assert sorted(p.name for p in charts.iterdir()) == sorted([bar_file.name, line_file.name])


async def test_several_labels_choose_several_options_of_a_multi_select(tmp_path: Path) -> None:
    output, seen, _ = await run(
        tmp_path,
        ["/probe ask", "b3 b1", "b1", "B1 b2 b3", "a1 b1", "/press b2, b3", "b9 b1", "2 3"],
    )
    assert (
        "#1 → #team:\n"
        "  Pick topics.\n"
        "  [a1] Skip\n"
        "#2 → #team:\n"
        "  Or these.\n"
        "  Topics for Friday (up to 2: their labels together, like b1 b2): "
        "[b1] Roadmap  [b2] Hiring  [b3] On-call\n"
    ) in output
    assert "alice> b3 b1\n(only you can see this)\n  Noted: roadmap, oncall.\n" in output
    assert "alice> b1\n(only you can see this)\n  Noted: roadmap.\n" in output
    assert "alice> B1 b2 b3\nChoose at most 2 of these options (3 given).\n" in output
    assert "alice> a1 b1\nSeveral labels choose options of one multi-select menu together" in output
    assert "alice> /press b2, b3\n(only you can see this)\n  Noted: hiring, oncall.\n" in output
    assert "alice> b9 b1\nThere is no button [b9] to press.\n" in output
    # Numbers are answers, never buttons: a DM to the bot.
    assert "alice> 2 3\n→ DM to @alice:\n  I only understand commands." in output
    assert [(e.action_id, e.value, e.values) for e in seen] == [
        ("probe:topics", "roadmap", ("roadmap", "oncall")),
        ("probe:topics", "roadmap", ("roadmap",)),
        ("probe:topics", "hiring", ("hiring", "oncall")),
    ]
    assert all((e.message_channel_id, e.message_id) == ("team", "m2") for e in seen)


def test_a_chart_without_a_folder_or_with_one_that_cannot_be_written(tmp_path: Path) -> None:
    empty = Chart("Nothing yet", ("a", "b"), (ChartSeries("s", (None, None)),), "No answers.")
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    (line,) = Renderer(charts=ChartFiles(blocked / "charts")).chart(empty)
    assert line.startswith("[chart: Nothing yet; picture not saved: ")
    assert Renderer().chart(empty) == ["[chart: Nothing yet]"]
    untitled = Chart(" ", ("a",), (ChartSeries("s", (1.0,)),), "One.")
    assert Renderer().chart(untitled) == ["[chart: untitled]"]
