"""Persistence: SQLAlchemy 2 models, the async engine and sessions, migrations entry points."""
