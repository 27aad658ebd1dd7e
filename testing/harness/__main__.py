"""`python -m testing.harness build|up`: build the cached binaries, or run a cluster by hand.

python -m testing.harness build     # build (or find) the pinned binaries and actionlint
python -m testing.harness up        # start a cluster, print `export KUBECONFIG=...`, wait for ^C
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType

from testing.harness.actionlint import actionlint_version, ensure_actionlint
from testing.harness.binaries import BinariesError, ensure_binaries, tool_versions
from testing.harness.cluster import Cluster, ClusterError

DESCRIPTION = "Modelport's real-Kubernetes test cluster."


def build() -> int:
    versions = tool_versions()
    started = time.monotonic()
    try:
        bin_dir = ensure_binaries()
        print(f"{versions.key}: {bin_dir} ({time.monotonic() - started:.0f}s)")
        started = time.monotonic()
        linter = ensure_actionlint()
    except BinariesError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"actionlint-{actionlint_version()}: {linter} ({time.monotonic() - started:.0f}s)")
    return 0


def up(keep: bool) -> int:
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        with Cluster(keep_dir=keep) as cluster:
            print(f"# test cluster in {cluster.dir}, API server {cluster.server}")
            print(f"export KUBECONFIG={cluster.kubeconfig}")
            print(f"export PATH={cluster.bin_dir}:$PATH")
            print("# press Ctrl-C to stop it", flush=True)
            signal.pause()
    except ClusterError:
        return 1
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testing.harness", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build or find the cached control-plane binaries, actionlint")
    run = commands.add_parser("up", help="start a cluster and wait for Ctrl-C")
    run.add_argument("--keep", action="store_true", help="keep the cluster folder afterwards")
    args = parser.parse_args(argv)
    if args.command == "build":
        return build()
    return up(keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
