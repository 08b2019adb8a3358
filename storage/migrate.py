"""Running the Alembic migrations from code (``syncup db ...`` and start-up)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations
from storage.errors import OperatorError

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


def known(revision: str) -> bool:
    """Whether this release has the revision (a newer release's revisions are unknown)."""
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic raises ResolutionError/CommandError for unknown ids
        return False


class SchemaOutOfDate(OperatorError):
    pass


class MigrationError(OperatorError):
    """``syncup db upgrade|downgrade REVISION`` cannot do what was asked; nothing was changed."""


def revisions() -> list[str]:
    """Every revision, oldest first (the history is linear)."""
    script = ScriptDirectory.from_config(alembic_config())
    return [s.revision for s in reversed(list(script.walk_revisions()))]


def newer_schema_message(current: str, head: str | None) -> str:
    return (
        f"The database schema is at revision {current}, which this syncup does not know (its "
        f"latest is {head}): a newer syncup migrated it. Upgrade syncup to that version or "
        f"later; to go back to this one, run `syncup db downgrade {head}` with the newer "
        "syncup first."
    )


_RELATIVE = re.compile(r"^([+-])(\d+)$")


def _target(revision: str, current: str | None, known: list[str]) -> str | None:
    """The revision id ``revision`` names (None for ``base``), or a :class:`MigrationError`."""
    wanted = revision.strip()
    at = known.index(current) if current is not None else -1
    relative = _RELATIVE.match(wanted)
    if relative:
        step = int(relative.group(2)) * (1 if relative.group(1) == "+" else -1)
        index = at + step
        if not -1 <= index < len(known):
            raise MigrationError(
                f"Revision {wanted} from {current or 'base'} is outside the history "
                f"(base, {', '.join(known)}). Nothing was changed."
            )
        return known[index] if index >= 0 else None
    if wanted == "head":
        return known[-1]
    if wanted == "base":
        return None
    matches = [r for r in known if r == wanted] or [r for r in known if r.startswith(wanted)]
    if len(matches) != 1 or len(wanted) < 4:
        raise MigrationError(
            f'There is no revision "{wanted}": use head, base, +N, -N or one of '
            f"{', '.join(known)} (see `syncup db current`). Nothing was changed."
        )
    return matches[0]


@dataclass(frozen=True)
class Move:
    """What ``syncup db upgrade|downgrade`` did: the revision before and after."""

    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


async def move_to(
    engine: AsyncEngine, revision: str, direction: Literal["upgrade", "downgrade"]
) -> Move:
    """Upgrade or downgrade to ``revision``, checked first: an unknown revision, a database
    migrated by a newer syncup, or a move the other way (``upgrade 0002`` on a database at
    0003) raise :class:`MigrationError` and change nothing."""
    known = revisions()
    current = await current_revision(engine)
    if current is not None and current not in known:
        raise MigrationError(newer_schema_message(current, known[-1]))
    target = _target(revision, current, known)
    at, to = (known.index(r) if r is not None else -1 for r in (current, target))
    name = target or "base"
    if direction == "upgrade" and to < at:
        raise MigrationError(
            f"The database is at {current}, later than {name}: that would be a downgrade, "
            f"which removes what later revisions added. Nothing was changed; run `syncup db "
            f"downgrade {name}` if you mean it."
        )
    if direction == "downgrade" and to > at:
        raise MigrationError(
            f"The database is at {current or 'base (empty)'}, before {name}: that would be an "
            f"upgrade. Nothing was changed; run `syncup db upgrade {name}` if you mean it."
        )
    if to != at:
        await (upgrade if direction == "upgrade" else downgrade)(engine, name)
    return Move(current, target)


async def ensure_schema(engine: AsyncEngine, *, auto_migrate: bool) -> str | None:
    """Upgrade to head, or with ``auto_migrate`` off refuse an old schema; returns the head."""
    head = head_revision()
    current = await current_revision(engine)
    if current == head:
        return head
    if current is not None and not known(current):
        raise SchemaOutOfDate(newer_schema_message(current, head))
    if auto_migrate:
        await upgrade(engine)
        log.info("database schema upgraded from %s to %s", current or "empty", head)
        return head
    raise SchemaOutOfDate(
        f"The database schema is at {current or 'nothing (empty database)'}, this syncup needs "
        f"{head}. Run `syncup db upgrade` (or set [database] auto_migrate = true)."
    )
