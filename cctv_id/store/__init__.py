"""Persistence: SQLAlchemy models, Alembic migrations and the repository."""
