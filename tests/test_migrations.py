"""The Alembic migrations against the models, on SQLite and PostgreSQL.

The migrations are the only way a schema is made, so these tests prove that they build exactly what
``storage.models`` describes (Alembic's own autogenerate comparison finds nothing to do), that they
can be undone to nothing and redone, that start-up refuses or upgrades an old schema as configured,
and that every revision can be reverted.
"""

from __future__ import annotations

import ast
import asyncio
import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Column, Index, Integer, MetaData, String, Table, UniqueConstraint, inspect
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Connection

from storage import migrate
from storage.db import Database
from storage.migrate import SchemaOutOfDate
from storage.models import Base

VERSIONS_DIR = migrate.MIGRATIONS_DIR / "versions"


# --- helpers -------------------------------------------------------------------------------------


def _script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(migrate.alembic_config())


def _revisions_base_to_head() -> list[Script]:
    return list(reversed(list(_script_directory().walk_revisions())))


def _compare(conn: Connection, metadata: MetaData) -> list[Any]:
    """Alembic's autogenerate diff, with the options ``migrations/env.py`` uses."""
    context = MigrationContext.configure(
        conn,
        opts={
            "target_metadata": metadata,
            "compare_type": True,
            "render_as_batch": conn.dialect.name == "sqlite",
        },
    )
    return compare_metadata(context, metadata)


async def _diff(db: Database, metadata: MetaData = Base.metadata) -> list[Any]:
    async with db.engine.connect() as conn:
        return await conn.run_sync(_compare, metadata)


def _op_names(diff: list[Any]) -> list[str]:
    """``compare_metadata`` gives tuples, and lists of tuples for column modifications."""
    return [item[0][0] if isinstance(item, list) else item[0] for item in diff]


async def _table_names(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def _leftover_objects(db: Database) -> set[str]:
    """Schema objects other than tables that a downgrade must also remove."""
    async with db.engine.connect() as conn:
        if db.dialect == "sqlite":
            rows = await conn.execute(
                sql_text("SELECT type || ':' || name FROM sqlite_master WHERE tbl_name != :t"),
                {"t": "alembic_version"},
            )
            return {row[0] for row in rows}
        sequences = await conn.run_sync(lambda c: inspect(c).get_sequence_names())
        rows = await conn.execute(
            sql_text(
                "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE n.nspname = 'public' AND t.typtype = 'e'"
            )
        )
        return {f"sequence:{name}" for name in sequences} | {f"enum:{row[0]}" for row in rows}


def _metadata_copy() -> MetaData:
    copy = MetaData(naming_convention=dict(Base.metadata.naming_convention))
    for table in Base.metadata.sorted_tables:
        table.to_metadata(copy)
    return copy


@pytest.fixture
async def empty_db(db_url: str) -> AsyncIterator[Database]:
    """A Database on an empty database (no tables, not even ``alembic_version``)."""
    db = Database(db_url)
    try:
        yield db
    finally:
        await db.dispose()


# --- the models and the migrations agree ---------------------------------------------------------


async def test_upgrade_from_empty_matches_the_models(empty_db: Database) -> None:
    assert await _table_names(empty_db) == set()
    assert await migrate.current_revision(empty_db.engine) is None

    await migrate.upgrade(empty_db.engine)

    assert await migrate.current_revision(empty_db.engine) == migrate.head_revision()
    assert await _table_names(empty_db) == set(Base.metadata.tables) | {"alembic_version"}
    assert await _diff(empty_db) == []


def _add_column(md: MetaData) -> None:
    md.tables["workspaces"].append_column(Column("icon_url", String(255), nullable=True))


def _change_type(md: MetaData) -> None:
    md.tables["members"].c.display_name.type = String(100)


def _change_nullable(md: MetaData) -> None:
    md.tables["members"].c.dm_channel_id.nullable = False


def _add_table(md: MetaData) -> None:
    Table("not_in_the_models", md, Column("id", Integer, primary_key=True))


def _add_index(md: MetaData) -> None:
    table = md.tables["members"]
    Index("ix_members_display_name", table.c.display_name)


def _remove_index(md: MetaData) -> None:
    table = md.tables["outbox"]
    table.indexes.discard(next(ix for ix in table.indexes if ix.name == "ix_outbox_due"))


def _remove_unique(md: MetaData) -> None:
    table = md.tables["workspaces"]
    table.constraints.discard(next(c for c in table.constraints if isinstance(c, UniqueConstraint)))


@pytest.mark.parametrize(
    ("mutate", "expected_op"),
    [
        pytest.param(_add_column, "add_column", id="column-added"),
        pytest.param(_change_type, "modify_type", id="type-changed"),
        pytest.param(_change_nullable, "modify_nullable", id="nullable-changed"),
        pytest.param(_add_table, "add_table", id="table-added"),
        pytest.param(_add_index, "add_index", id="index-added"),
        pytest.param(_remove_index, "remove_index", id="index-removed"),
        pytest.param(_remove_unique, "remove_constraint", id="unique-removed"),
    ],
)
async def test_the_comparison_reports_models_that_disagree(
    database: Database, mutate: Callable[[MetaData], None], expected_op: str
) -> None:
    """The no-difference check above is only worth something if a difference is seen."""
    unchanged = _metadata_copy()
    assert await _diff(database, unchanged) == []  # the copy itself is faithful

    changed = _metadata_copy()
    mutate(changed)
    assert _op_names(await _diff(database, changed)) == [expected_op]


async def test_the_comparison_reports_a_database_that_disagrees(database: Database) -> None:
    async with database.engine.begin() as conn:
        await conn.execute(sql_text("ALTER TABLE members ADD COLUMN nickname VARCHAR(20)"))
    diff = await _diff(database)
    assert _op_names(diff) == ["remove_column"]
    _, _, table, column = diff[0]
    assert (table, column.name) == ("members", "nickname")


# --- downgrade and upgrade again -----------------------------------------------------------------


async def test_each_revision_downgrades_and_upgrades_again(empty_db: Database) -> None:
    """The "stairway": every step up can be undone and redone, in order from base to head."""
    engine = empty_db.engine
    revisions = _revisions_base_to_head()
    assert revisions
    for script in revisions:
        await migrate.upgrade(engine, script.revision)
        assert await migrate.current_revision(engine) == script.revision
        await migrate.downgrade(engine, "-1")
        assert await migrate.current_revision(engine) == script.down_revision
        await migrate.upgrade(engine, script.revision)
        assert await migrate.current_revision(engine) == script.revision

    assert await migrate.current_revision(engine) == migrate.head_revision()
    assert await _diff(empty_db) == []


async def test_downgrade_to_base_removes_everything_and_upgrade_works_again(
    database: Database,
) -> None:
    await migrate.downgrade(database.engine, "base")

    assert await _table_names(database) == {"alembic_version"}
    assert await _leftover_objects(database) == set()
    assert await migrate.current_revision(database.engine) is None

    await migrate.upgrade(database.engine)

    assert await migrate.current_revision(database.engine) == migrate.head_revision()
    assert await _table_names(database) == set(Base.metadata.tables) | {"alembic_version"}
    assert await _diff(database) == []


# --- start-up: refuse or upgrade an old schema ---------------------------------------------------


async def _make_old(db: Database, state: str) -> str | None:
    """Bring ``db`` to ``state``; returns the revision it is then at."""
    if state == "empty":
        return None
    head = migrate.head_revision()
    assert head is not None
    previous = _script_directory().get_revision(head).down_revision
    assert previous is None or isinstance(previous, str)
    await migrate.upgrade(db.engine)
    await migrate.downgrade(db.engine, previous or "base")
    return previous


@pytest.mark.parametrize("state", ["empty", "old"])
async def test_ensure_schema_refuses_an_old_schema_without_auto_migrate(
    empty_db: Database, state: str
) -> None:
    revision = await _make_old(empty_db, state)
    tables_before = await _table_names(empty_db)

    with pytest.raises(SchemaOutOfDate, match=r"syncup db upgrade") as raised:
        await migrate.ensure_schema(empty_db.engine, auto_migrate=False)

    head = migrate.head_revision()
    assert head is not None and head in str(raised.value)
    # Refusing changes nothing.
    assert await migrate.current_revision(empty_db.engine) == revision
    assert await _table_names(empty_db) == tables_before


@pytest.mark.parametrize("state", ["empty", "old"])
async def test_ensure_schema_upgrades_with_auto_migrate(empty_db: Database, state: str) -> None:
    await _make_old(empty_db, state)

    head = await migrate.ensure_schema(empty_db.engine, auto_migrate=True)

    assert head == migrate.head_revision()
    assert await migrate.current_revision(empty_db.engine) == migrate.head_revision()
    assert await _diff(empty_db) == []
    # Once at head, start-up without auto-migration is content.
    assert await migrate.ensure_schema(empty_db.engine, auto_migrate=False) == head


async def test_alembic_command_without_a_given_connection(db_url: str) -> None:
    """``migrations/env.py`` makes its own engine when called as plain Alembic (the CLI path)."""
    await asyncio.to_thread(command.upgrade, migrate.alembic_config(db_url), "head")
    db = Database(db_url)
    try:
        assert await migrate.current_revision(db.engine) == migrate.head_revision()
        assert await _diff(db) == []
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    "url", ["sqlite+aiosqlite:///offline.db", "postgresql+asyncpg://u@localhost/offline"]
)
def test_offline_sql_covers_every_table(url: str) -> None:
    """``alembic upgrade --sql`` (reviewed by a DBA before a production upgrade) works."""
    cfg = migrate.alembic_config(url)
    cfg.output_buffer = io.StringIO()
    command.upgrade(cfg, "head", sql=True)
    script = cfg.output_buffer.getvalue()
    for table in Base.metadata.tables:
        assert f"CREATE TABLE {table} " in script
    cfg.output_buffer = io.StringIO()
    command.downgrade(cfg, "head:base", sql=True)
    script = cfg.output_buffer.getvalue()
    for table in Base.metadata.tables:
        assert f"DROP TABLE {table};" in script


# --- the revision files themselves ---------------------------------------------------------------


def _function_body(tree: ast.Module, name: str) -> list[ast.stmt] | None:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node.body
    return None


def _does_something(body: list[ast.stmt]) -> bool:
    """False for a body of only a docstring, ``pass``, ``...`` or comments."""
    for statement in body:
        if isinstance(statement, ast.Pass):
            continue
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue
        return True
    return False


def test_history_is_linear_with_one_head() -> None:
    script = _script_directory()
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1
    assert script.get_current_head() == migrate.head_revision()


def test_every_version_file_is_a_revision() -> None:
    on_disk = {p.resolve() for p in VERSIONS_DIR.glob("*.py") if p.name != "__init__.py"}
    known = {Path(s.path).resolve() for s in _revisions_base_to_head()}
    assert on_disk and on_disk == known


@pytest.mark.parametrize("script", _revisions_base_to_head(), ids=lambda s: s.revision)
def test_every_migration_has_a_downgrade(script: Script) -> None:
    assert callable(getattr(script.module, "downgrade", None))
    tree = ast.parse(Path(script.path).read_text(encoding="utf-8"))
    upgrade_body = _function_body(tree, "upgrade")
    downgrade_body = _function_body(tree, "downgrade")
    assert upgrade_body is not None and downgrade_body is not None
    assert _does_something(upgrade_body)
    assert _does_something(downgrade_body), f"{script.path}: downgrade() does nothing"


@pytest.mark.parametrize("script", _revisions_base_to_head(), ids=lambda s: s.revision)
def test_migrations_do_not_import_the_application(script: Script) -> None:
    """A migration must keep working after the models it was written against have changed."""
    tree = ast.parse(Path(script.path).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported.isdisjoint({"storage", "bot", "adapters"}), imported


async def test_ensure_schema_names_a_newer_schema(database: Database) -> None:
    """A database migrated by a newer syncup is refused with a message saying so."""
    async with database.engine.begin() as conn:
        await conn.execute(sql_text("UPDATE alembic_version SET version_num = 'f00dcafe'"))
    for auto in (True, False):
        with pytest.raises(SchemaOutOfDate, match="newer syncup"):
            await migrate.ensure_schema(database.engine, auto_migrate=auto)
