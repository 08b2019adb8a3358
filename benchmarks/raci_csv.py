"""The RACI matrix as CSV at scale: import, export, and the matrix drawn as charts.

Seeds one workspace with MEMBERS members, writes a CSV of AREAS areas (two Responsible, one
Accountable, one Consulted, one Informed member each: five rows an area), then times, on a
fresh, migrated SQLite database (or the empty database given with --database-url):

- the import of the whole file (every row checked first, then one transaction);
- the import of the same file again (every cell already there: nothing to change);
- ``syncup raci export`` of the matrix, and whether it is the file imported (goal: identical);
- drawing the matrix as PNG charts (40 areas by 24 people each), and the peak memory of that.

Run from the repository root::

    .venv/bin/python benchmarks/raci_csv.py [--areas 1000 --members 300]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.charts import render_png  # noqa: E402
from bot.features.raci.csv_io import export_matrix, import_matrix, read_rows  # noqa: E402
from bot.features.raci.render import build_matrix, charts  # noqa: E402
from bot.features.raci.store import matrix_of  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Member, Workspace  # noqa: E402

NOW = datetime(2026, 3, 9, 9, tzinfo=UTC)


def csv_text(areas: int, members: int) -> str:
    lines = ["area,role,who"]
    for n in range(areas):
        name = f"Area {n:04d}"
        for offset, role in ((0, "R"), (1, "R"), (2, "A"), (3, "C"), (4, "I")):
            lines.append(f"{name},{role},@person-{(n * 5 + offset) % members:04d}")
    return "\n".join(lines) + "\n"


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="syncup-bench-") as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        db = Database(url)
        try:
            await migrate.upgrade(db.engine)
            async with db.transaction() as session:
                workspace = Workspace(
                    platform="slack", external_id="T1", name="Acme", created_at=NOW
                )
                session.add(workspace)
                await session.flush()
                for n in range(args.members):
                    session.add(
                        Member(
                            workspace_id=workspace.id, platform_user_id=f"U{n:06d}",
                            display_name=f"person-{n:04d}", timezone_set_by_member=False,
                            is_platform_admin=False, created_at=NOW, updated_at=NOW,
                        )
                    )  # fmt: skip
            path = Path(tmp) / "raci.csv"
            path.write_text(csv_text(args.areas, args.members))
            rows = read_rows(path)
            for label in ("import", "import again (no change)"):
                start = time.perf_counter()
                async with db.transaction() as session:
                    ws = await session.get(Workspace, workspace.id)
                    assert ws is not None
                    result = await import_matrix(session, ws, rows, NOW)
                took = time.perf_counter() - start
                print(
                    f"{label}: {len(rows) - 1} rows, {result.areas} areas ({result.created} new) "
                    f"in {took:.2f} s ({(len(rows) - 1) / took:,.0f} rows/s)"
                )
            out = io.StringIO()
            start = time.perf_counter()
            async with db.transaction() as session:
                ws = await session.get(Workspace, workspace.id)
                assert ws is not None
                written = await export_matrix(session, ws, out)
            took = time.perf_counter() - start
            same = out.getvalue() == path.read_text()
            print(f"export: {written} rows in {took:.2f} s; identical to the import: {same}")
            start = time.perf_counter()
            async with db.transaction() as session:
                found = await matrix_of(session, workspace.id)
            print(f"the matrix read for /raci show: {time.perf_counter() - start:.2f} s")
            parts = charts(build_matrix(found), "Acme")
            render_png(charts(build_matrix(found[:1]), "Acme")[0])  # fonts found once
            tracemalloc.start()
            times, sizes = [], []
            for chart in parts[: args.charts]:
                start = time.perf_counter()
                sizes.append(len(render_png(chart)))
                times.append(time.perf_counter() - start)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(
                f"charts: the matrix is {len(parts)} charts (so /raci show lists it in words); "
                f"{len(sizes)} full charts (40 areas x 24 people) drawn in "
                f"{', '.join(f'{t:.2f}' for t in times)} s, {sum(sizes) / len(sizes) / 1024:.0f} "
                f"KiB each; peak Python memory {peak / 1024 / 1024:.1f} MiB"
            )
        finally:
            await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--areas", type=int, default=1000)
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--charts", type=int, default=3, help="how many charts to draw")
    parser.add_argument("--database-url", help="an empty database (default: SQLite in /tmp)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
