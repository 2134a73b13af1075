"""Persistence: SQLAlchemy models, the async engine, Alembic migrations."""
