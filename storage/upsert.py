"""INSERT ... ON CONFLICT DO NOTHING on both backends: the primitive behind claims and dedup."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import dml as postgresql_dml
from sqlalchemy.dialects.sqlite import dml as sqlite_dml
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.visitors import InternalTraversal


def dialect_insert(session: AsyncSession) -> Callable[[Any], Any]:
    """The INSERT construct of the session's backend (both have ON CONFLICT)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


# SQLAlchemy compiles an INSERT ... ON CONFLICT anew at every execution: the dialects' ON
# CONFLICT clauses have no cache key, so the whole statement has none. For the hot ones (a
# burst of webhook deliveries, outbox rows, claims) that compiling was a sixth of the work.
# These give DO NOTHING (with or without target columns) a key made of everything it renders.
_TARGET: list[tuple[str, InternalTraversal]] = [
    ("inferred_target_elements", InternalTraversal.dp_string_list),
    ("inferred_target_whereclause", InternalTraversal.dp_clauseelement),
]


class _SQLiteDoNothing(sqlite_dml.OnConflictDoNothing):
    _traverse_internals: ClassVar[list[tuple[str, InternalTraversal]]] = _TARGET


class _PostgresDoNothing(postgresql_dml.OnConflictDoNothing):
    _traverse_internals: ClassVar[list[tuple[str, InternalTraversal]]] = [
        *_TARGET,
        ("constraint_target", InternalTraversal.dp_string),
    ]


class _SQLiteInsert(sqlite_dml.Insert):
    inherit_cache = True  # the standard INSERT's key, which includes the ON CONFLICT clause


class _PostgresInsert(postgresql_dml.Insert):
    inherit_cache = True


def insert_do_nothing(
    session: AsyncSession, table: Table | type[Any], index_elements: list[str] | None = None
) -> Any:
    """``INSERT INTO table ... ON CONFLICT (index_elements) DO NOTHING``, compiled once and
    then taken from SQLAlchemy's statement cache (add ``.returning(...)`` as usual)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    postgres = dialect == "postgresql"
    # on_conflict_do_nothing returns a new statement: setting its clause changes only that one.
    stmt = (_PostgresInsert if postgres else _SQLiteInsert)(table).on_conflict_do_nothing()
    clause = _PostgresDoNothing if postgres else _SQLiteDoNothing
    stmt._post_values_clause = clause(index_elements=index_elements)
    return stmt


async def insert_unless_exists(
    session: AsyncSession,
    model: type[Any],
    values: dict[str, Any],
    returning: ColumnElement[Any],
    conflict_columns: list[str] | None = None,
) -> Any | None:
    """Insert a row; returns ``returning`` of the new row, or None when the key already exists.

    On PostgreSQL a concurrent insert of the same key waits for the other transaction and then
    reports the conflict, so exactly one of them gets a value back.
    """
    stmt = insert_do_nothing(session, model, conflict_columns).values(**values).returning(returning)
    return (await session.execute(stmt)).scalar_one_or_none()
