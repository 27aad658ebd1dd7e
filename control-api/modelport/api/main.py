"""``modelport-api``: serve the control API (settings from ``MODELPORT_API_*``), migrate the
database, create the first admin, or rotate the master key."""

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
        app.state.ctx.db.ensure_migrated()  # say so plainly, before the server starts
    except ModelportError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None
    # The app itself honours X-Forwarded-* from ``trusted_proxies`` only (none by default).
    uvicorn.run(app, host=host, port=port, proxy_headers=False, log_level="info")


@cli.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Upgrade the database schema (``alembic upgrade head``), one migrator at a time."""
    from modelport.api.db.session import migrate as run_migrations

    settings = _settings()
    applied = run_migrations(settings.database_url, revision)
    if applied:
        typer.echo(f"database migrated to {revision}: applied {', '.join(applied)}")
    else:
        typer.echo(f"database already at {revision}: nothing to apply")


@cli.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The admin's email address.")],
    password: Annotated[
        str | None,
        typer.Option(
            envvar="MODELPORT_ADMIN_PASSWORD", help="Password for web sign-in (optional)."
        ),
    ] = None,
) -> None:
    """Create an admin user and print its two API keys, once: an account key (control API, CLI)
    and an inference key (calls models)."""
    from modelport.api.db.session import Database
    from modelport.api.services import keys
    from modelport.core.errors import ModelportError

    settings = _settings()
    db = Database(settings.database_url)
    try:
        db.ensure_migrated()
        with db.sessions() as session:
            admin, issued = keys.create_admin_with_keys(
                session, settings=settings, email=email, password=password, key_name="create-admin"
            )
    except ModelportError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    typer.echo(
        f"admin {admin.email} created; API keys (shown once, store them now):\n"
        f"account key (control API, `modelport login --key`): {issued.account}\n"
        f"inference key (calls models): {issued.inference}"
    )


@cli.command("rotate-keys")
def rotate_keys() -> None:
    """Re-wrap every stored data key under the current master key (artifacts stay untouched)."""
    from modelport.api.db.session import Database
    from modelport.api.services.rotation import rotate_master_key

    settings = _settings()
    keys = settings.key_ring()
    if keys is None:
        typer.echo("MODELPORT_API_MASTER_KEYS is not set", err=True)
        raise typer.Exit(2)
    db = Database(settings.database_url)
    try:
        with db.sessions() as session:  # rotation commits batch by batch
            report = rotate_master_key(session, keys=keys)
    finally:
        db.dispose()
    typer.echo(
        f"re-wrapped {report.rewrapped} data keys under {report.current_key_id!r}; "
        f"{report.already_current} were already current"
    )
    if report.unreadable:
        typer.echo(
            f"{len(report.unreadable)} artifacts are wrapped by a master key that is not "
            f"configured; keep that key and run again: {', '.join(report.unreadable)}",
            err=True,
        )
        raise typer.Exit(1)


def main() -> None:
    cli(prog_name="modelport-api")


if __name__ == "__main__":
    main()
