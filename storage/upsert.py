"""INSERT ... ON CONFLICT DO NOTHING on both backends: the primitive behind claims and dedup."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_insert(session: AsyncSession) -> Callable[[Any], Any]:
    """The INSERT construct of the session's backend (both have ON CONFLICT)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


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
    insert = dialect_insert(session)
    stmt = (
        insert(model)
        .values(**values)
        .on_conflict_do_nothing(index_elements=conflict_columns)
        .returning(returning)
    )
    return (await session.execute(stmt)).scalar_one_or_none()
