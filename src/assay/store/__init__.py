"""The catalog (SQL through SQLAlchemy, migrated by Alembic) and the file store under one root."""
