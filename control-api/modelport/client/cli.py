"""The ``modelport`` commands that talk to a control API: login, upload, models, versions, keys,
predict and usage. :func:`register` adds them to the ``modelport`` command.

Every command takes ``--url`` and ``--key`` (else ``MODELPORT_URL`` / ``MODELPORT_API_KEY``, else
the config file written by ``login``) and ``--output table|json``.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from modelport.client import config as cfg
from modelport.client._client import Client
from modelport.client.errors import ApiError, ClientError
from pydantic import BaseModel
from rich.console import Console, Group, RenderableType
from rich.table import Table


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"


UrlOpt = Annotated[
    str | None, typer.Option("--url", envvar="MODELPORT_URL", help="Control API URL.")
]
KeyOpt = Annotated[
    str | None,
    typer.Option("--key", envvar="MODELPORT_API_KEY", help="API key.", show_default=False),
]
OutOpt = Annotated[Output, typer.Option("--output", "-o", help="table or json.")]

console = Console()
errors = Console(stderr=True)

models_app = typer.Typer(help="List, show, change and delete models.", no_args_is_help=True)
versions_app = typer.Typer(
    help="A model's versions: list, upload, roll back.", no_args_is_help=True
)
keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)


@contextmanager
def _client(url: str | None, key: str | None) -> Iterator[Client]:
    """A client for the resolved URL and key; API errors become a message and exit code 1."""
    saved = cfg.load()
    client = Client(url or saved.url, api_key=key or saved.key)
    try:
        yield client
    except ApiError as exc:
        errors.print(f"[red]error[/red] {exc.status} {exc.code}: {exc.message}")
        if exc.details is not None:
            errors.print_json(data=exc.details)
        raise typer.Exit(1) from None
    except ClientError as exc:
        errors.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    finally:
        client.close()


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _emit(output: Output, value: Any, table: Callable[[], RenderableType]) -> None:
    if output is Output.JSON:
        sys.stdout.write(json.dumps(_plain(value), indent=2) + "\n")
    else:
        console.print(table())


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    return table


def _pairs(title: str, pairs: dict[str, Any]) -> Table:
    return _table(title, ["field", "value"], list(pairs.items()))


# -- account ---------------------------------------------------------------------------------


def login(
    url: UrlOpt = None,
    email: Annotated[str | None, typer.Option(help="Sign in with email and password.")] = None,
    password: Annotated[str | None, typer.Option(envvar="MODELPORT_PASSWORD", hidden=True)] = None,
    key: KeyOpt = None,
) -> None:
    """Store the server URL and an API key in the config file.

    With --key, the key is checked and stored. With --email, the password is asked for, and a new
    API key named after this machine is created and stored.
    """
    target = url or cfg.load().url
    if key is None:
        if email is None:
            email = typer.prompt("Email")
        if password is None:
            password = typer.prompt("Password", hide_input=True)
    with _client(target, key) as client:
        if key is None:
            assert email is not None and password is not None
            client.login(email, password)
            key = client.create_key(f"cli-{socket.gethostname()}"[:100]).key
            client = Client(target, api_key=key)
        user = client.me()
    path = cfg.save(cfg.Config(url=target, key=key))
    console.print(f"signed in to {target} as {user.email}; key stored in {path}")


def upload(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    name: Annotated[str, typer.Option("--name", "-n", help="Model name.")],
    description: Annotated[str, typer.Option(help="Description.")] = "",
    url: UrlOpt = None,
    key: KeyOpt = None,
    output: OutOpt = Output.TABLE,
) -> None:
    """Upload a model with a progress bar (speed, time left); print its id and endpoint URL."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    bar = Progress(*columns, console=errors, transient=output is Output.JSON)
    with _client(url, key) as client, bar:
        task = bar.add_task(f"uploading {file.name}", total=file.stat().st_size)
        result = client.upload(
            file,
            name=name,
            description=description,
            progress=lambda sent, _total: bar.update(task, completed=sent),
        )
    _emit(
        output,
        result,
        lambda: (
            f"model id:     {result.model_id}\nendpoint URL: {result.endpoint_url}\n"
            f"{result.message}"
        ),
    )


# -- models ----------------------------------------------------------------------------------


@models_app.command("list")
def models_list(
    status: Annotated[str | None, typer.Option(help="active, inactive or archived.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    url: UrlOpt = None,
    key: KeyOpt = None,
    output: OutOpt = Output.TABLE,
) -> None:
    """List your models."""
    with _client(url, key) as client:
        page = client.list_models(status=status, limit=limit, offset=offset)
    rows = [
        (m.id, m.name, m.file_format, m.status, m.phase, m.request_count, m.endpoint_url)
        for m in page.items
    ]
    columns = ["id", "name", "format", "status", "phase", "requests", "endpoint"]
    _emit(output, page, lambda: _table(f"{page.total} models", columns, rows))


@models_app.command("show")
def models_show(
    model_id: str, url: UrlOpt = None, key: KeyOpt = None, output: OutOpt = Output.TABLE
) -> None:
    """Show one model."""
    with _client(url, key) as client:
        model = client.get_model(model_id)
    _emit(output, model, lambda: _pairs(model.name, _plain(model)))


@models_app.command("update")
def models_update(
    model_id: str,
    description: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option(help="active, inactive or archived.")] = None,
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Deployment setting as name=value, e.g. --set maxReplicas=5 (repeatable)."
        ),
    ] = None,
    url: UrlOpt = None,
    key: KeyOpt = None,
    output: OutOpt = Output.TABLE,
) -> None:
    """Change a model's description, status or deployment settings."""
    change: dict[str, Any] = {}
    if description is not None:
        change["description"] = description
    if status is not None:
        change["status"] = status
    with _client(url, key) as client:
        if setting:
            current = client.get_model(model_id).settings
            change["settings"] = {**current, **dict(_parse_setting(s) for s in setting)}
        model = client.update_model(model_id, **change)
    _emit(output, model, lambda: _pairs(model.name, _plain(model)))


def _parse_setting(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise typer.BadParameter(f"expected name=value, got {text!r}")
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError:
        return name, raw


@models_app.command("delete")
def models_delete(
    model_id: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    url: UrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """Delete a model: its endpoint, every stored version and its key material."""
    if not yes:
        typer.confirm(f"Delete model {model_id} and everything stored for it?", abort=True)
    with _client(url, key) as client:
        client.delete_model(model_id)
    console.print(f"deleted {model_id}")


# -- versions --------------------------------------------------------------------------------


@versions_app.command("list")
def versions_list(
    model_id: str, url: UrlOpt = None, key: KeyOpt = None, output: OutOpt = Output.TABLE
) -> None:
    """List a model's versions."""
    with _client(url, key) as client:
        versions = client.versions(model_id)
    rows = [
        (v.number, "yes" if v.active else "", v.original_name, v.size, v.sha256[:16], v.created_at)
        for v in versions
    ]
    columns = ["version", "serving", "file", "bytes", "sha256", "uploaded"]
    _emit(output, versions, lambda: _table(f"versions of {model_id}", columns, rows))


@versions_app.command("upload")
def versions_upload(
    model_id: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    url: UrlOpt = None,
    key: KeyOpt = None,
    output: OutOpt = Output.TABLE,
) -> None:
    """Upload a new version; it rolls out without downtime."""
    with _client(url, key) as client:
        result = client.upload_version(model_id, file)
    _emit(output, result, lambda: result.message)


@versions_app.command("rollback")
def versions_rollback(
    model_id: str,
    version: int,
    url: UrlOpt = None,
    key: KeyOpt = None,
    output: OutOpt = Output.TABLE,
) -> None:
    """Serve an earlier version again."""
    with _client(url, key) as client:
        model = client.rollback(model_id, version)
    _emit(output, model, lambda: f"{model.name} now serves version {model.version}")


# -- keys ------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    name: str, url: UrlOpt = None, key: KeyOpt = None, output: OutOpt = Output.TABLE
) -> None:
    """Create an API key. The whole key is printed this once."""
    with _client(url, key) as client:
        created = client.create_key(name)
    _emit(output, created, lambda: f"{created.key}\n(key id {created.id}: store it now)")


@keys_app.command("list")
def keys_list(url: UrlOpt = None, key: KeyOpt = None, output: OutOpt = Output.TABLE) -> None:
    """List your API keys (never their secrets)."""
    with _client(url, key) as client:
        keys = client.list_keys()
    rows = [(k.id, k.name, k.created_at, k.last_used_at, k.revoked_at or "active") for k in keys]
    columns = ["id", "name", "created", "last used", "revoked"]
    _emit(output, keys, lambda: _table("API keys", columns, rows))


@keys_app.command("revoke")
def keys_revoke(key_id: str, url: UrlOpt = None, key: KeyOpt = None) -> None:
    """Revoke a key; model endpoints refuse it within a minute."""
    with _client(url, key) as client:
        client.revoke_key(key_id)
    console.print(f"revoked {key_id}")


# -- calling models --------------------------------------------------------------------------


def predict(
    model_id: str,
    json_input: Annotated[
        str, typer.Option("--json", help="File with the inputData JSON, or - for stdin.")
    ],
    url: UrlOpt = None,
    key: KeyOpt = None,
    output: OutOpt = Output.TABLE,
) -> None:
    """Send inputData to a model's endpoint and print the predictions."""
    text = sys.stdin.read() if json_input == "-" else Path(json_input).read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}") from None
    if isinstance(data, dict) and "inputData" in data:
        data = data["inputData"]
    with _client(url, key) as client:
        result = client.predict(model_id, data)
    _emit(output, result, lambda: _pairs(model_id, result))


def usage(
    model_id: str,
    window: Annotated[str, typer.Option(help="1h, 24h, 7d or 30d.")] = "24h",
    url: UrlOpt = None,
    key: KeyOpt = None,
    output: OutOpt = Output.TABLE,
) -> None:
    """Requests, errors and latency percentiles of a model over a time window, bucket by bucket
    (the numbers the web UI's usage chart draws)."""
    with _client(url, key) as client:
        summary = client.usage(model_id, window=window)
    lat = summary.latency_ms
    pairs = {
        "requests (window)": summary.requests,
        "errors (window)": summary.errors,
        "latency p50/p90/p99 ms": f"{_ms(lat.p50)} / {_ms(lat.p90)} / {_ms(lat.p99)}",
        "requests (all time)": summary.request_count,
        "last used": summary.last_used,
    }
    rows = [
        (
            b.start.astimezone().strftime("%Y-%m-%d %H:%M"),
            b.requests,
            b.errors,
            _ms(b.latency_ms.p50),
            _ms(b.latency_ms.p90),
            _ms(b.latency_ms.p99),
        )
        for b in summary.buckets
    ]
    columns = ["from", "requests", "errors", "p50 ms", "p90 ms", "p99 ms"]
    _emit(
        output,
        summary,
        lambda: Group(
            _pairs(f"usage of {model_id}, {window}", pairs),
            _table("per bucket", columns, rows),
        ),
    )


def _ms(value: float | None) -> str:
    """A latency as the web UI shows it: one decimal, a dash when there were no requests."""
    return "-" if value is None else f"{value:.1f}"


def register(app: typer.Typer) -> None:
    """Add the client commands to the ``modelport`` command."""
    app.command()(login)
    app.command()(upload)
    app.command()(predict)
    app.command()(usage)
    app.add_typer(models_app, name="models")
    app.add_typer(versions_app, name="versions")
    app.add_typer(keys_app, name="keys")
