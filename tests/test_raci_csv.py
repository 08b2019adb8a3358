"""``syncup raci import|export``: the matrix as CSV (area,role,who). Export then import changes
nothing; an import with bad rows reports every one with its line number and imports nothing;
a good one replaces the cells of the areas it names, on SQLite and PostgreSQL; the command line
picks the workspace and speaks in one line per problem."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot.cli import cli
from bot.features.raci.csv_io import export_matrix, import_matrix, pick_workspace, read_rows
from storage.db import Database
from storage.errors import OperatorError
from storage.models import Workspace
from storage.raci import RaciArea, RaciAssignment
from tests.raci_world import PIPELINE, RaciWorld, raci_world

GOOD = """area,role,who
Data pipeline,R,@bob
Data pipeline,R,@data-eng
Data pipeline,A,@alice
Data pipeline,C,@ml
Data pipeline,I,#data
Serving,Responsible,carol
serving,accountable,@bob
Serving,I,#team
"""


@pytest.fixture
async def world(database: Database) -> AsyncIterator[RaciWorld]:
    async with raci_world(database) as built:
        yield built


async def matrix(world: RaciWorld) -> set[tuple[str, str, str, str]]:
    async with world.database.transaction() as session:
        rows = await session.execute(
            select(
                RaciArea.name, RaciAssignment.role, RaciAssignment.who, RaciAssignment.label
            ).join(RaciAssignment, RaciAssignment.area_id == RaciArea.id)
        )
        return {tuple(row) for row in rows}  # type: ignore[misc]


async def export_text(world: RaciWorld) -> str:
    out = io.StringIO()
    async with world.database.transaction() as session:
        workspace = await pick_workspace(session, None)
        await export_matrix(session, workspace, out)
    return out.getvalue()


async def run_import(world: RaciWorld, content: str, tmp_path: Path) -> None:
    path = tmp_path / "raci.csv"
    path.write_text(content, encoding="utf-8")
    async with world.database.transaction() as session:
        workspace = await pick_workspace(session, None)
        await import_matrix(session, workspace, read_rows(path), world.clock.now())


async def test_export_then_import_changes_nothing(world: RaciWorld, tmp_path: Path) -> None:
    await world.text(PIPELINE)
    await world.text('/raci setup "Serving" -r @carol -a @bob -i #team')
    before = await matrix(world)
    exported = await export_text(world)
    assert exported == GOOD.replace("Serving,Responsible,carol", "Serving,R,@carol").replace(
        "serving,accountable,@bob", "Serving,A,@bob"
    )
    await world.text("/raci edit serving --accountable @dan")  # changed after the export
    await run_import(world, exported, tmp_path)
    assert await matrix(world) == before
    assert await export_text(world) == exported


async def test_import_creates_areas_and_replaces_cells(world: RaciWorld, tmp_path: Path) -> None:
    # Groups and channels are known to an import once the matrix holds them (it asks no
    # platform): an area names them first.
    await world.text("/raci setup Seed -r @data-eng @ml -a @alice -i #data #team")
    await world.text('/raci setup "Serving" -r @dan -a @erin --timezone Asia/Tokyo')
    await world.text("/raci setup Untouched -r @dan -a @erin")
    await run_import(world, GOOD, tmp_path)
    cells = await matrix(world)
    serving = {(role, label) for area, role, _, label in cells if area == "Serving"}
    assert serving == {("R", "carol"), ("A", "bob"), ("I", "team")}
    assert ("Untouched", "R", "dan") in {(a, r, lab) for a, r, _, lab in cells}
    async with world.database.transaction() as session:
        areas = {a.name: a for a in await session.scalars(select(RaciArea))}
    assert set(areas) == {"Data pipeline", "Seed", "Serving", "Untouched"}
    assert areas["Serving"].timezone == "Asia/Tokyo"  # settings are kept
    assert areas["Data pipeline"].timezone == "UTC"  # a new area gets the defaults


async def test_bad_rows_are_all_reported_and_nothing_is_imported(
    world: RaciWorld, tmp_path: Path
) -> None:
    await world.text(PIPELINE)
    before = await matrix(world)
    bad = (
        "area,role,who\n"
        "Data pipeline,R,@bob\n"
        "Data pipeline,X,@bob\n"  # 3: unknown role
        "Data pipeline,A,@zed\n"  # 4: unknown person
        ",R,@bob\n"  # 5: no area
        "Serving,R,@carol,extra\n"  # 6: four values
        "Serving,A,#team\n"  # 7: a channel as Accountable
        "Two heads,R,@bob\n"
        "Two heads,A,@alice\n"
        "Two heads,A,@carol\n"
        "Headless,R,@bob\n"
        "Groupie,R,@bob\n"
        "Groupie,A,@data-eng\n"  # 13: a group as Accountable
        '"Multi\nline",R,@bob\n'  # 14-15: a quoted value over two lines, then no Accountable
    )
    with pytest.raises(OperatorError) as caught:
        await run_import(world, bad, tmp_path)
    lines = str(caught.value).splitlines()
    assert lines == [
        "9 problem(s) in the file; nothing was imported:",
        'line 3: unknown role "X"; use R, A, C or I.',
        "line 4: No member or user group named @zed in this workspace. A user group syncup "
        "has not seen yet is named by its platform id (@S0123ABCD on Slack, the role's id on "
        "Discord).",
        'line 5: Give the area a name, e.g. "Data pipeline".',
        "line 6: expected 3 values (area,role,who), found 4.",
        "line 7: Accountable takes people or user groups, not a channel (#team); channels "
        "can be Consulted or Informed.",
        "line 13: Accountable is one person, not a group (@data-eng); name the one who "
        "answers for the area, and make the group Responsible.",
        'area "Two heads" (line 9, 10): Only one person can be Accountable (the RACI rule); '
        "you named @alice and @carol. Make the others Responsible or Consulted.",
        'area "Headless" (line 11): An area needs exactly one Accountable: name the one '
        "person who answers for it.",
        'area "Multi line" (line 15): An area needs exactly one Accountable: name the one '
        "person who answers for it.",
    ]
    assert await matrix(world) == before


async def test_a_file_without_the_header_is_refused(world: RaciWorld, tmp_path: Path) -> None:
    with pytest.raises(OperatorError, match="line 1: the first row must be the header"):
        await run_import(world, "Data pipeline,R,@bob\n", tmp_path)
    with pytest.raises(OperatorError, match="no such file"):
        read_rows(tmp_path / "missing.csv")
    (tmp_path / "latin1.csv").write_bytes("area,role,who\nCaf\xe9,R,@bob\n".encode("latin-1"))
    with pytest.raises(OperatorError, match="not UTF-8"):
        read_rows(tmp_path / "latin1.csv")


# --- the command line (SQLite) ---------------------------------------------------------------


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("SYNCUP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNCUP_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    return CliRunner()


def seed(url: str, *, second_workspace: bool = False) -> None:
    async def go() -> None:
        database = Database(url)
        try:
            async with raci_world(database) as world:
                await world.text(PIPELINE)
                if second_workspace:
                    async with database.transaction() as session:
                        first = await session.scalar(select(Workspace))
                        assert first is not None
                        session.add(
                            Workspace(
                                platform="test", external_id="W2", name="Beta",
                                created_at=first.created_at,
                            )
                        )  # fmt: skip
        finally:
            await database.dispose()

    asyncio.run(go())


def test_the_command_line_round_trip(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    seed(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    exported = runner.invoke(cli, ["raci", "export"])
    assert exported.exit_code == 0, exported.output
    assert exported.stdout.startswith("area,role,who\nData pipeline,R,@bob\n")
    assert "Exported 5 row(s)." in exported.stderr
    written = runner.invoke(cli, ["raci", "export", "--output", "matrix.csv"])
    assert written.exit_code == 0
    assert (tmp_path / "matrix.csv").read_text() == exported.stdout
    imported = runner.invoke(cli, ["raci", "import", "matrix.csv"])
    assert imported.exit_code == 0, imported.output
    assert imported.stderr == "Imported 5 cell(s) into 1 area(s) (0 new).\n"
    (tmp_path / "bad.csv").write_text("area,role,who\nY,R,@bob\nX,Q,@bob\n")
    refused = runner.invoke(cli, ["raci", "import", "bad.csv"])
    assert refused.exit_code == 1
    assert refused.stderr.splitlines() == [
        "syncup: 2 problem(s) in the file; nothing was imported:",
        'line 3: unknown role "Q"; use R, A, C or I.',
        'area "Y" (line 2): An area needs exactly one Accountable: name the one person who '
        "answers for it.",
    ]
    assert "Traceback" not in refused.output


def test_the_command_line_picks_the_workspace(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    seed(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}", second_workspace=True)
    ambiguous = runner.invoke(cli, ["raci", "export"])
    assert ambiguous.exit_code == 1
    assert ambiguous.stderr == (
        "syncup: Name the workspace with --workspace; workspaces: W1 (Acme, test), "
        "W2 (Beta, test).\n"
    )
    assert (
        "Data pipeline,A,@alice"
        in runner.invoke(cli, ["raci", "export", "--workspace", "acme"]).stdout
    )
    beta = runner.invoke(cli, ["raci", "export", "--workspace", "W2"])
    assert beta.exit_code == 0 and beta.stdout == "area,role,who\n"
    unknown = runner.invoke(cli, ["raci", "export", "--workspace", "nope"])
    assert unknown.stderr.startswith('syncup: No workspace "nope"; workspaces: W1 (Acme, test)')
    missing = runner.invoke(cli, ["raci", "import", "nothing.csv", "--workspace", "W1"])
    assert missing.exit_code == 1
    assert missing.stderr == "syncup: Cannot read nothing.csv: no such file.\n"
