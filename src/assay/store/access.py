"""Tokens and browser sessions in the catalog database. Secrets are never stored, only SHA-256.

Tokens are 32 random bytes, so a plain SHA-256 is a safe, fast lookup key (there is nothing to
brute-force, unlike a password).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from assay.core.errors import InputError, NotFoundError
from assay.core.records import ROLES, Token, check_name
from assay.store.catalog import SqlCatalog, _record, now
from assay.store.schema import SessionRow, TokenRow

TOKEN_PREFIX = "assay_"
SESSION_HOURS = 12


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class AccessStore:
    """Create, check and revoke tokens; open and close browser sessions."""

    def __init__(self, catalog: SqlCatalog) -> None:
        self._session = catalog._session

    def create_token(self, name: str, role: str) -> tuple[Token, str]:
        """A new token and its secret, shown once."""
        check_name(name, "token")
        if role not in ROLES:
            raise InputError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = TokenRow(name=name, role=role, token_hash=digest(secret), created_at=now())
        with self._session() as s:
            s.add(row)
            try:
                s.commit()
            except IntegrityError:
                raise InputError(f"a token named {name!r} already exists") from None
            return _record(Token, row), secret

    def check_token(self, secret: str) -> Token | None:
        """The live token with this secret, or None (unknown, revoked, or not even text)."""
        try:
            secret.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from JSON: no token holds one
            return None
        with self._session() as s:
            row = s.scalars(select(TokenRow).where(TokenRow.token_hash == digest(secret))).first()
            if row is None or row.revoked_at is not None:
                return None
            return _record(Token, row)

    def list_tokens(self) -> list[Token]:
        with self._session() as s:
            return [_record(Token, r) for r in s.scalars(select(TokenRow).order_by(TokenRow.id))]

    def revoke_token(self, name: str) -> Token:
        """Revoke a token and close its browser sessions."""
        with self._session() as s:
            row = s.scalars(select(TokenRow).where(TokenRow.name == name)).first()
            if row is None:
                raise NotFoundError(f"token {name!r} not found")
            if row.revoked_at is None:
                row.revoked_at = now()
            s.execute(delete(SessionRow).where(SessionRow.token_id == row.id))
            s.commit()
            return _record(Token, row)

    def open_session(self, token: Token) -> str:
        secret = secrets.token_urlsafe(32)
        with self._session() as s:
            s.add(
                SessionRow(
                    id_hash=digest(secret),
                    token_id=token.id,
                    created_at=now(),
                    expires_at=now() + timedelta(hours=SESSION_HOURS),
                )
            )
            s.commit()
        return secret

    def check_session(self, secret: str) -> Token | None:
        with self._session() as s:
            row = s.get(SessionRow, digest(secret))
            if row is None or row.expires_at < now():
                return None
            token = s.get(TokenRow, row.token_id)
            if token is None or token.revoked_at is not None:
                return None
            return _record(Token, token)

    def close_session(self, secret: str) -> None:
        with self._session() as s:
            s.execute(delete(SessionRow).where(SessionRow.id_hash == digest(secret)))
            s.commit()
