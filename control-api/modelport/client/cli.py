"""The ``modelport`` commands that talk to a control API: login, upload, models, versions, keys,
predict, usage and logs. :func:`register` adds them to the ``modelport`` command.

Every command takes ``--url`` and ``--key`` (an account key; else ``MODELPORT_URL`` /
``MODELPORT_API_KEY``, else the config file written by ``login``) and ``--output table|json``;
``predict`` also takes ``--inference-key`` (``MODELPORT_INFERENCE_KEY``) for the model endpoint.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from modelport.client import config as cfg
from modelport.client import types as t
from modelport.client._client import Client
from modelport.client.errors import ApiError, ClientError, WaitTimeout
from pydantic import BaseModel
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"


UrlOpt = Annotated[
    str | None, typer.Option("--url", envvar="MODELPORT_URL", help="Control API URL.")
]
KeyOpt = Annotated[
    str | None,
    typer.Option("--key", envvar="MODELPORT_API_KEY", help="Account API key.", show_default=False),
]
InferenceKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--inference-key",
        envvar="MODELPORT_INFERENCE_KEY",
        help="Inference API key, sent to model endpoints.",
        show_default=False,
    ),
]
OutOpt = Annotated[Output, typer.Option("--output", "-o", help="table or json.")]

console = Console()
errors = Console(stderr=True)

#: Log lines ``upload --wait`` prints when a model fails.
FAILURE_LOG_LINES = 20

models_app = typer.Typer(help="List, show, change and delete models.", no_args_is_help=True)
versions_app = typer.Typer(
    help="A model's versions: list, upload, roll back.", no_args_is_help=True
)
keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)


@contextmanager
def _client(url: str | None, key: str | None, inference_key: str | None = None) -> Iterator[Client]:
    """A client for the resolved URL and keys; API errors become a message and exit code 1."""
    saved = cfg.load()
    client = Client(
        url or saved.url,
        api_key=key or saved.key,
        inference_key=inference_key or saved.inference_key,
    )
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


def _table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    whole: Sequence[str] = (),
) -> Table:
    """A table; the ``whole`` columns (ids that other commands take) are never cut or wrapped,
    whatever the terminal's width: the other columns fold instead."""
    table = Table(title=title)
    for index, column in enumerate(columns):
        if column in whole:
            width = max([len(column), *(len(str(row[index])) for row in rows)])
            table.add_column(column, no_wrap=True, min_width=width)
        else:
            table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    return table


def _pairs(title: str, pairs: dict[str, Any]) -> Table:
    """Field/value rows; a nested object's fields become rows of their own (``settings.gpuCount``)
    and lists are shown as JSON, never as Python reprs."""
    return _table(title, ["field", "value"], list(_flatten(pairs).items()))


def _flatten(pairs: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for name, value in pairs.items():
        if isinstance(value, dict) and value:
            rows.update(_flatten(value, f"{prefix}{name}."))
        elif isinstance(value, list | dict):
            rows[prefix + name] = json.dumps(value)
        else:
            rows[prefix + name] = value
    return rows


# -- account ---------------------------------------------------------------------------------


def login(
    url: UrlOpt = None,
    email: Annotated[str | None, typer.Option(help="Sign in with email and password.")] = None,
    password: Annotated[str | None, typer.Option(envvar="MODELPORT_PASSWORD", hidden=True)] = None,
    key: KeyOpt = None,
    inference_key: InferenceKeyOpt = None,
) -> None:
    """Store the server URL and API keys in the config file.

    With --key (an account key), the key is checked and stored, with --inference-key if given.
    With --email, the password is asked for, and two keys named after this machine are created
    and stored: an account key for the commands and an inference key for `predict`.
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
            name = f"cli-{socket.gethostname()}"[:80]
            key = client.create_key(name, scope="account").key
            inference_key = client.create_key(f"{name} (inference)", scope="inference").key
            client = Client(target, api_key=key)
        user = client.me()
    path = cfg.save(cfg.Config(url=target, key=key, inference_key=inference_key))
    console.print(f"signed in to {target} as {user.email}; keys stored in {path}")


@contextmanager
def _progress(file: Path, output: Output) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr (bytes, speed, time left) for sending ``file``; yields the
    callback the client calls as the upload goes."""
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
    with Progress(*columns, console=errors, transient=output is Output.JSON) as bar:
        task = bar.add_task(f"uploading {file.name}", total=file.stat().st_size)
        yield lambda sent, _total: bar.update(task, completed=sent)


def upload(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    name: Annotated[
        str | None,
        typer.Option("--name", "-n", help="Model name (default: the file name without suffix)."),
    ] = None,
    description: Annotated[str, typer.Option(help="Description.")] = "",
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Wait until the model is Ready (print its endpoint) or Failed (print why and "
            "the last lines of its log, exit 1).",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=1, help="With --wait: give up after this many seconds (exit 1).")
    ] = 300.0,
    url: UrlOpt = None,
    key: KeyOpt = None,
    output: OutOpt = Output.TABLE,
) -> None:
    """Upload a model with a progress bar (speed, time left); print its id and endpoint URL.

    With --wait, follow it until it serves or fails to load: exit 0 when Ready; 1 when Failed
    (with the reason and the runtime log's last lines) or still starting after --timeout."""
    with _client(url, key) as client, _progress(file, output) as progress:
        result = client.upload(
            file, name=name or file.stem, description=description, progress=progress
        )
    if not wait:
        _emit(output, result, lambda: _uploaded(result))
        return
    if output is Output.TABLE:
        console.print(_uploaded(result), markup=False, highlight=False)
    with _client(url, key) as client:
        model, lines = _settle(client, result.model_id, timeout)
    if output is Output.JSON:
        doc = {"upload": _plain(result), "model": _plain(model), "logs": lines}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        _report_settled(model, lines, timeout)
    if model.phase != "Ready":
        raise typer.Exit(1)


def _uploaded(result: t.Upload) -> str:
    return f"model id:     {result.model_id}\nendpoint URL: {result.endpoint_url}\n{result.message}"


def _settle(client: Client, model_id: str, timeout: float) -> tuple[t.Model, list[str]]:
    """The model once Ready or Failed (or as it is at the timeout), and, unless Ready, the
    last lines of its runtime log."""
    try:
        model = client.wait(
            model_id, timeout=timeout, on_phase=lambda phase: errors.print(f"phase: {phase}")
        )
    except WaitTimeout as exc:
        model = exc.model
    lines = [] if model.phase == "Ready" else client.logs(model_id, tail=FAILURE_LOG_LINES)
    return model, lines


def _report_settled(model: t.Model, lines: list[str], timeout: float) -> None:
    if model.phase == "Ready":
        console.print(f"ready: {model.endpoint_url}", markup=False, highlight=False)
        return
    why = ": ".join(part for part in (model.reason, model.message) if part)
    if model.phase == "Failed":
        errors.print(f"failed: {why or 'no reason given'}", markup=False, highlight=False)
    else:
        still = f"still {model.phase} after {timeout:g} s" + (f": {why}" if why else "")
        errors.print(still, markup=False, highlight=False)
    if lines:
        errors.print(f"last {len(lines)} lines of the runtime log:", markup=False)
        sys.stderr.write("".join(f"  {line}\n" for line in lines))


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
    _emit(output, page, lambda: _models_table(f"{page.total} models", columns, rows))


def _models_table(title: str, columns: list[str], rows: list[tuple[Any, ...]]) -> Table:
    """The models with their endpoint URLs whole; where the terminal is too narrow for that,
    without them (a URL folded over seven lines can be neither read nor copied)."""
    table = _table(title, columns, rows, whole=("id", "endpoint"))
    natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
    if natural <= console.width:
        return table
    table = _table(title, columns[:-1], [row[:-1] for row in rows], whole=("id",))
    table.caption = "endpoint URLs: in a wider terminal, or with -o json"
    return table


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
        (
            v.number,
            "yes" if v.active else "",
            v.original_name,
            v.size,
            v.sha256[:16],
            _when(v.created_at),
        )
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
    """Upload a new version with a progress bar; it rolls out without downtime."""
    with _client(url, key) as client, _progress(file, output) as progress:
        result = client.upload_version(model_id, file, progress=progress)
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


class Scope(StrEnum):
    INFERENCE = "inference"
    ACCOUNT = "account"


@keys_app.command("create")
def keys_create(
    name: str,
    scope: Annotated[
        Scope, typer.Option(help="inference: calls models only; account: the control API only.")
    ] = Scope.INFERENCE,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="Bind an inference key to this model (repeat for more)."),
    ] = None,
    url: UrlOpt = None,
    key: KeyOpt = None,
    output: OutOpt = Output.TABLE,
) -> None:
    """Create an API key. The whole key is printed this once."""
    with _client(url, key) as client:
        created = client.create_key(name, scope=scope.value, models=model or None)
    _emit(
        output,
        created,
        lambda: f"{created.key}\n({created.scope} key {created.id}: store it now)",
    )


@keys_app.command("list")
def keys_list(url: UrlOpt = None, key: KeyOpt = None, output: OutOpt = Output.TABLE) -> None:
    """List your API keys (never their secrets), with what each may do."""
    with _client(url, key) as client:
        keys = client.list_keys()
    rows = [
        (
            k.id,
            k.name,
            k.scope,
            "all" if k.models is None else " ".join(k.models) or "none",
            _when(k.created_at),
            _when(k.last_used_at),
            _when(k.revoked_at) or "active",
        )
        for k in keys
    ]
    columns = ["id", "name", "scope", "models", "created", "last used", "revoked"]
    _emit(output, keys, lambda: _table("API keys", columns, rows, whole=("id",)))


@keys_app.command("revoke")
def keys_revoke(key_id: str, url: UrlOpt = None, key: KeyOpt = None) -> None:
    """Revoke a key by its id; model endpoints refuse it within a minute.

    A whole key is taken too: only its id is sent or printed."""
    key_id = _key_id(key_id)
    with _client(url, key) as client:
        client.revoke_key(key_id)
    console.print(f"revoked {key_id}")


def _key_id(value: str) -> str:
    """The id inside a whole key ``mp_<id>_<secret>``; anything else is taken as an id."""
    prefix, sep, rest = value.partition("_")
    key_id, sep2, secret = rest.partition("_")
    return key_id if prefix == "mp" and sep and sep2 and secret else value


# -- calling models --------------------------------------------------------------------------


def predict(
    model_id: str,
    json_input: Annotated[
        str, typer.Option("--json", help="File with the inputData JSON, or - for stdin.")
    ],
    url: UrlOpt = None,
    key: KeyOpt = None,
    inference_key: InferenceKeyOpt = None,
    output: OutOpt = Output.TABLE,
) -> None:
    """Send inputData to a model's endpoint and print the predictions.

    The account key finds the endpoint; the inference key calls it."""
    text = sys.stdin.read() if json_input == "-" else Path(json_input).read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}") from None
    if isinstance(data, dict) and "inputData" in data:
        data = data["inputData"]
    with _client(url, key, inference_key) as client:
        result = client.predict(model_id, data)
    _emit(output, result, lambda: _pairs(model_id, result))


def logs(
    model_id: str,
    tail: Annotated[int, typer.Option(min=1, max=1000, help="How many lines, 1 to 1000.")] = 200,
    url: UrlOpt = None,
    key: KeyOpt = None,
    output: OutOpt = Output.TABLE,
) -> None:
    """Print the last lines of a model's runtime log (why it failed to load, for one)."""
    with _client(url, key) as client:
        lines = client.logs(model_id, tail=tail)
    if output is Output.JSON:
        sys.stdout.write(json.dumps({"modelId": model_id, "lines": lines}, indent=2) + "\n")
    else:
        sys.stdout.write("".join(f"{line}\n" for line in lines))


def usage(
    model_id: str,
    window: Annotated[str, typer.Option(help="1h, 24h, 7d or 30d.")] = "24h",
    url: UrlOpt = None,
    key: KeyOpt = None,
    output: OutOpt = Output.TABLE,
) -> None:
    """Requests, errors and latency percentiles of a model over a time window, bucket by bucket.

    The same numbers as the web UI's usage charts."""
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
            _when(b.start),
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


def _when(value: datetime | None) -> str | None:
    """A time in the local zone to the minute, as the usage buckets show it."""
    return None if value is None else value.astimezone().strftime("%Y-%m-%d %H:%M")


def _ms(value: float | None) -> str:
    """A latency as the web UI shows it: one decimal, a dash when there were no requests."""
    return "-" if value is None else f"{value:.1f}"


def register(app: typer.Typer) -> None:
    """Add the client commands to the ``modelport`` command."""
    app.command()(login)
    app.command()(upload)
    app.command()(predict)
    app.command()(usage)
    app.command()(logs)
    app.add_typer(models_app, name="models")
    app.add_typer(versions_app, name="versions")
    app.add_typer(keys_app, name="keys")
