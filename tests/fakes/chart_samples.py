"""A sample results chart shared by the chart tests (bot.charts and the adapters')."""

from bot.chat import Chart, ChartSeries

RESULTS = Chart(
    "How sustainable was this week's pace?",
    ("1 - Burning out", "2", "3", "4", "5 - Very sustainable"),
    (ChartSeries("This week", (5.0, 10.0, 40.0, 30.0, 15.0), (1, 2, 8, 6, 3)),),
    "1: 5%, 2: 10%, 3: 40%, 4: 30%, 5: 15% of 20 answers. Average 3.4 of 5.",
    unit="%",
    team="Platform",
    period="9 Mar to 13 Mar 2026",
    answers=20,
    headline="Average 3.4 of 5",
)
