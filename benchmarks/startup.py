"""Start-up time: what a user waits for before syncup answers, and what drawing a chart adds.

Each figure is the median of RUNS fresh interpreters (so no module is cached in memory between
runs; the operating system's file cache is warm after the first):

* ``syncup --help``: the console script's own process, start to exit;
* ``import bot.app`` and ``import`` of each adapter package with its port (the modules that
  deliver charts), in a bare interpreter, against ``python -c pass``;
* whether matplotlib (or Pillow) is imported by any of those, which it must not be: charts import
  matplotlib on first use;
* the first chart drawn in a process (the import of matplotlib and its font cache included) and
  a later one.

Run from the repository root::

    .venv/bin/python benchmarks/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

IMPORTS = {
    "python -c pass": "pass",
    "import bot.app": "import bot.app",
    "import the adapters": (
        "import bot.app, adapters.console.render, adapters.slack.port, adapters.discord.render"
    ),
}
HEAVY = ("matplotlib", "PIL", "numpy")
CHART = """
import time
from bot.charts import render_png
from bot.chat import Chart, ChartSeries
chart = Chart("Pace", ("1", "2", "3", "4", "5"), (ChartSeries("votes", (1, 2, 8, 6, 3)),), "alt")
start = time.perf_counter()
render_png(chart)
first = time.perf_counter() - start
start = time.perf_counter()
render_png(chart)
print(first, time.perf_counter() - start)
"""


def timed(argv: list[str], runs: int) -> tuple[float, float]:
    """The median wall time and the median CPU time (user + system) of ``argv``: on a busy
    machine the CPU time is the steadier figure."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def row(name: str, figures: tuple[float, float], note: str = "") -> None:
    wall, cpu = figures
    print(f"  {name:<28}  {wall * 1000:7.0f} ms wall  {cpu * 1000:6.0f} ms CPU  {note}".rstrip())


def loaded(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return out.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    script = shutil.which("syncup", path=str(Path(sys.executable).parent))
    print(f"median of {args.runs} runs each, python {sys.version.split()[0]}")
    if script:
        row("syncup --help", timed([script, "--help"], args.runs))
    for name, code in IMPORTS.items():
        heavy = ", ".join(loaded(code)) or "none"
        row(name, timed([sys.executable, "-c", code], args.runs), f"(loads {heavy})")
    firsts, laters = [], []
    for _ in range(max(3, args.runs // 3)):
        out = subprocess.run(
            [sys.executable, "-c", CHART], cwd=ROOT, check=True, capture_output=True, text=True
        )
        first, later = (float(x) for x in out.stdout.split())
        firsts.append(first)
        laters.append(later)
    print(f"  first chart in a process      {statistics.median(firsts) * 1000:7.0f} ms")
    print(f"  a later chart                 {statistics.median(laters) * 1000:7.0f} ms")


if __name__ == "__main__":
    main()
