"""``modelport``: ``up`` (the embedded system), ``scan`` (the security scanner), ``upload``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Annotated

import typer

cli = typer.Typer(add_completion=False, help="Modelport: a model file in, an HTTPS endpoint out.")


@cli.command()
def up(
    data_dir: Annotated[
        Path | None, typer.Option(help="Data folder (default ~/.local/share/modelport).")
    ] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8000,
) -> None:
    """Run Modelport on this machine: SQLite, local artifacts, models as local processes."""
    from modelport.api import up as embedded

    embedded.run(data_dir, port=port)


@cli.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def scan(ctx: typer.Context) -> None:
    """Scan model files: exit 0 all safe, 1 something unsafe, 2 could not decide."""
    try:
        from modelport.core.scan.cli import main as scan_main
    except ImportError:
        typer.echo("the scanner is not installed", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(scan_main(list(ctx.args)))


class _Progress:
    """A file wrapper that advances a progress bar as the upload reads it."""

    def __init__(self, handle: IO[bytes], advance: Callable[[int], object]) -> None:
        self.handle = handle
        self.advance = advance

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.advance(len(data))
        return data


@cli.command()
def upload(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    name: Annotated[str, typer.Option("--name", "-n", help="Model name.")],
    description: Annotated[str, typer.Option(help="Description.")] = "",
    url: Annotated[str, typer.Option(envvar="MODELPORT_URL")] = "http://127.0.0.1:8000",
    key: Annotated[str | None, typer.Option(envvar="MODELPORT_API_KEY")] = None,
) -> None:
    """Upload a model with a progress bar; print its id and endpoint URL."""
    import httpx
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    if not key:
        typer.echo("an API key is needed: --key or MODELPORT_API_KEY", err=True)
        raise typer.Exit(2)
    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn()) as bar:
        task = bar.add_task(f"uploading {file.name}", total=os.path.getsize(file))
        with file.open("rb") as handle:
            reader = _Progress(handle, lambda n: bar.advance(task, n))
            response = httpx.post(
                f"{url.rstrip('/')}/api/v1/models",
                headers={"Authorization": f"Bearer {key}"},
                files={"file": (file.name, reader, "application/octet-stream")},  # type: ignore[dict-item]
                data={"modelName": name, "description": description},
                timeout=httpx.Timeout(600.0, connect=10.0),
            )
    body = response.json()
    if response.status_code != 201:
        error = body.get("error", {})
        typer.echo(f"upload failed ({response.status_code}): {error.get('message')}", err=True)
        raise typer.Exit(1)
    typer.echo(f"model id:     {body['modelId']}\nendpoint URL: {body['endpointUrl']}")


def main() -> None:
    cli(prog_name="modelport")
