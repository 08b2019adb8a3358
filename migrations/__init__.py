"""Alembic migrations: the only way syncup's schema is created or changed."""
