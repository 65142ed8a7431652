"""`assay token`: API tokens for the web app (only their hashes are stored)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from assay.cli.common import HomeOption
from assay.cli.common import workspace as _workspace
from assay.cli.output import console, print_table

token_app = typer.Typer(help="API tokens for the web app and its API.", no_args_is_help=True)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Who or what the token is for.")],
    role: Annotated[
        str,
        typer.Option(help="viewer (read), validator (also upload and run), admin (also tokens)."),
    ] = "viewer",
    home: HomeOption = None,
) -> None:
    """Create an API token and print it (it is shown once; only its hash is stored)."""
    token, secret = _workspace(home).access.create_token(name, role)
    console.print(
        f"token {escape(token.name)} ({token.role}); keep it secret, it is not shown again:"
    )
    print(secret)


@token_app.command("list")
def token_list(home: HomeOption = None) -> None:
    """List tokens (names and roles, never secrets)."""
    from rich.table import Table

    table = Table("name", "role", "created", "revoked")
    for t in _workspace(home, create=False).access.list_tokens():
        table.add_row(
            escape(t.name),
            t.role,
            t.created_at.strftime("%Y-%m-%d %H:%M"),
            t.revoked_at.strftime("%Y-%m-%d %H:%M") if t.revoked_at else "",
        )
    print_table(table)


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(help="Token name.")], home: HomeOption = None
) -> None:
    """Revoke a token: it and its browser sessions stop working at once."""
    _workspace(home, create=False).access.revoke_token(name)
    console.print(f"revoked {escape(name)}")
