"""``modelport-runtime``: serve one model until SIGTERM, then drain and exit.

Exit status: 1 when the model could not be fetched, verified or loaded, 2 when the settings are
invalid. A failed load also writes its one-line reason to the termination-message file
(``TERMINATION_MESSAGE_PATH``), where Kubernetes and ``modelport up`` read it.

On SIGTERM or SIGINT the server stops accepting connections, lets in-flight requests finish
(up to ``DRAIN_SECONDS``), then ends by that signal (status 143 for SIGTERM), as uvicorn does.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import sys
from collections.abc import Sequence
from types import FrameType

import uvicorn
from modelport.runtime.app import create_app, failure_reason
from modelport.runtime.dataplane import DataPlane
from modelport.runtime.settings import RuntimeSettings, load_settings
from pydantic import ValidationError

log = logging.getLogger("modelport.runtime")

EXIT_LOAD_FAILED = 1
EXIT_BAD_SETTINGS = 2
#: The kubelet keeps at most 4096 bytes of a termination message.
TERMINATION_MESSAGE_BYTES = 4096


class RuntimeServer(uvicorn.Server):
    """uvicorn with two additions: a fatal start-up error exits non-zero, and SIGTERM first
    marks the runtime not ready (so probes fail) while in-flight requests finish."""

    def __init__(self, config: uvicorn.Config, *, plane: DataPlane) -> None:
        super().__init__(config)
        self.plane = plane
        self.failed: BaseException | None = None

    def fail(self, exc: BaseException) -> None:
        self.failed = exc
        self.should_exit = True

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.plane.draining:
            self.plane.draining = True
            log.info("signal %d: draining in-flight requests, then exiting", sig)
        super().handle_exit(sig, frame)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def serve(settings: RuntimeSettings) -> int:
    """Run the server; returns the process exit status."""
    server: RuntimeServer | None = None

    def on_fatal(exc: BaseException) -> None:
        assert server is not None
        server.fail(exc)

    app = create_app(settings, on_fatal=on_fatal)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        lifespan="on",
        access_log=False,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=math.ceil(settings.drain_seconds),
        backlog=2048,
        server_header=False,
        # The client address is not used; skip rewriting it from X-Forwarded-For per request.
        proxy_headers=False,
    )
    server = RuntimeServer(config, plane=app.state.plane)
    server.run()
    if server.failed is None:
        return 0
    write_termination_message(settings, f"model failed to load: {failure_reason(server.failed)}")
    return EXIT_LOAD_FAILED


def write_termination_message(settings: RuntimeSettings, reason: str) -> None:
    """Write ``reason`` as one line to the termination-message file (best effort).

    The default path is only written where it exists (the kubelet mounts it into a pod), so a
    runtime started by hand leaves nothing behind; a path set explicitly is created.
    """
    path = settings.termination_message_path
    if "termination_message_path" not in settings.model_fields_set and not path.exists():
        return
    line = " ".join(reason.split()).encode()[: TERMINATION_MESSAGE_BYTES - 1]
    try:
        path.write_text(line.decode(errors="ignore") + "\n", encoding="utf-8")
    except OSError as exc:
        log.warning("could not write the termination message to %s: %s", path, exc)


def main(argv: Sequence[str] | None = None) -> None:
    try:
        settings = load_settings(argv)
    except ValidationError as exc:
        print(f"modelport-runtime: invalid settings:\n{exc}", file=sys.stderr)
        sys.exit(EXIT_BAD_SETTINGS)
    configure_logging(settings.log_level)
    sys.exit(serve(settings))


if __name__ == "__main__":
    main()
