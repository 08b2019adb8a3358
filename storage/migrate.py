"""Running the Alembic migrations from code (``syncup db ...`` and start-up)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent


def alembic_config(url: str = "") -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    def read(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await _run(engine, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    await _run(engine, lambda cfg: command.downgrade(cfg, revision))


async def _run(engine: AsyncEngine, action) -> None:  # type: ignore[no-untyped-def]
    def run(conn: Connection) -> None:
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        action(cfg)

    async with engine.begin() as conn:
        await conn.run_sync(run)


def _known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic raises ResolutionError/CommandError for unknown ids
        return False


class SchemaOutOfDate(Exception):
    pass


async def ensure_schema(engine: AsyncEngine, *, auto_migrate: bool) -> str | None:
    """Upgrade to head, or with ``auto_migrate`` off refuse an old schema; returns the head."""
    head = head_revision()
    current = await current_revision(engine)
    if current == head:
        return head
    if current is not None and not _known(current):
        raise SchemaOutOfDate(
            f"The database schema is at revision {current}, which this syncup does not know "
            f"(its latest is {head}): it was migrated by a newer syncup. Run that newer version, "
            f"or with it `syncup db downgrade {head}` first."
        )
    if auto_migrate:
        await upgrade(engine)
        log.info("database schema upgraded from %s to %s", current or "empty", head)
        return head
    raise SchemaOutOfDate(
        f"The database schema is at {current or 'nothing (empty database)'}, this syncup needs "
        f"{head}. Run `syncup db upgrade` (or set [database] auto_migrate = true)."
    )
