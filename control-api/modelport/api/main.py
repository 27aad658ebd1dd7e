"""``modelport-api``: serve the control API (settings from ``MODELPORT_API_*``), or migrate."""

from __future__ import annotations

from typing import Annotated

import typer
from modelport.api.settings import ApiSettings
from pydantic import ValidationError

cli = typer.Typer(add_completion=False, help="The Modelport control API.")


def _settings() -> ApiSettings:
    try:
        return ApiSettings()
    except ValidationError as exc:
        typer.echo(f"invalid settings:\n{exc}", err=True)
        raise typer.Exit(2) from None


@cli.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Listen address.")] = "0.0.0.0",  # noqa: S104
    port: Annotated[int, typer.Option(help="Listen port.")] = 8000,
) -> None:
    """Serve the API (the default command)."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn
    from modelport.api.app import create_app
    from modelport.core.errors import ModelportError

    settings = _settings()
    try:
        app = create_app(settings)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    try:
        uvicorn.run(app, host=host, port=port, proxy_headers=True, log_level="info")
    except ModelportError as exc:  # e.g. an unmigrated database at start-up
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None


@cli.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Upgrade the database schema (``alembic upgrade head``)."""
    from modelport.api.db.session import migrate as run_migrations

    settings = _settings()
    run_migrations(settings.database_url, revision)
    typer.echo(f"database migrated to {revision}")


def main() -> None:
    cli(prog_name="modelport-api")


if __name__ == "__main__":
    main()
