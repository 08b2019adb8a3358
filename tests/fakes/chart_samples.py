"""A sample results chart shared by the adapters' chart tests."""

from bot.chat import Chart, ChartSeries

RESULTS = Chart(
    "How sustainable was this week's pace?",
    ("1 - Burning out", "2", "3", "4", "5 - Very sustainable"),
    (ChartSeries("This week", (5.0, 10.0, 40.0, 30.0, 15.0)),),
    "1: 5%, 2: 10%, 3: 40%, 4: 30%, 5: 15% of 20 answers.",
    unit="%",
)
