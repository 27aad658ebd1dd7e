"""``modelport``: ``up`` (the embedded system), ``scan`` (the security scanner), and the client
commands of :mod:`modelport.client.cli` (login, upload, models, versions, keys, predict, usage)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from modelport.client.cli import register as register_client_commands

cli = typer.Typer(add_completion=False, help="Modelport: a model file in, an HTTPS endpoint out.")


@cli.command()
def up(
    data_dir: Annotated[
        Path | None, typer.Option(help="Data folder (default ~/.local/share/modelport).")
    ] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8000,
    reset_admin_password: Annotated[
        bool, typer.Option(help="Give admin@localhost a new password and print it once.")
    ] = False,
) -> None:
    """Run Modelport on this machine: SQLite, local artifacts, models as local processes."""
    from modelport.api import up as embedded

    embedded.run(data_dir, port=port, reset_password=reset_admin_password)


@cli.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def scan(ctx: typer.Context) -> None:
    """Scan model files: exit 0 all safe, 1 something unsafe, 2 could not decide."""
    try:
        from modelport.core.scan.cli import main as scan_main
    except ImportError:
        typer.echo("the scanner is not installed", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(scan_main(list(ctx.args)))


register_client_commands(cli)


def main() -> None:
    cli(prog_name="modelport")
