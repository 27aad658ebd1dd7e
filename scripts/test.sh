#!/usr/bin/env bash
# Install everything Modelport's tests need and run them all: lint, types, unit, integration and
# the tests on the real Kubernetes test cluster. Safe to run again; slow only the first time.
#
#   bash scripts/test.sh              # everything
#   bash scripts/test.sh tests/core   # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=${MODELPORT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelport}
mkdir -p "$cache"
log() { printf '\n== %s (%s)\n' "$*" "$(date +%T)"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. System packages: PostgreSQL server binaries for the private test database, Chromium and npm
#    (which fetches axe-core, the accessibility checker) for the browser tests, debootstrap for
#    the README's first command on stock Debian and Ubuntu.
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]} from Debian packages"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 2. Python environment, cached per dependency set outside the checkout (torch and tensorflow
#    are large: install them once per machine, not once per clone).
command -v uv >/dev/null 2>&1 || python3 -m pip install -q --user uv
export PATH=$HOME/.local/bin:$PATH
# Keyed by the [project] table alone (the dependencies), not by tool settings or the version
# (scripts/release.py stamps it; a release must not reinstall torch and TensorFlow).
deps_hash=$(sed -n '/^\[project\]/,/^\[tool\./p' pyproject.toml | grep -v '^version = ' \
  | sha256sum | cut -c1-16)
venv=${MODELPORT_VENV:-$cache/venv-$deps_hash}
if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  uv venv -q --python 3.11 "$venv"
fi
# Let Python cache byte code (in the cached venv and the ignored __pycache__ folders): the tests
# start many Python processes, and each would otherwise recompile torch, TensorFlow and the rest.
unset PYTHONDONTWRITEBYTECODE
log "installing modelport[test] into $venv"
UV_HTTP_TIMEOUT=600 uv pip install -q --python "$venv/bin/python" -e '.[test]'
export PATH=$venv/bin:$PATH

# axe-core for the browser tests' accessibility check, cached outside the checkout
# (tests/web/axe.py finds it there, or fetches it the same way).
python -m tests.web.axe

# 3. Kubernetes control-plane binaries, built from Go modules and cached by version.
log "ensuring Kubernetes test-cluster binaries"
python -m testing.harness build

# 4. Static checks.
log "ruff"
ruff check .
ruff format --check .
log "mypy"
mypy

# 5. Known vulnerabilities in the images' locks: a report, not a gate (docs/security.md, "Supply
#    chain": the advisories change every day; `python scripts/audit.py --strict` fails on a fixable
#    one). Only on a full run (extra arguments select tests), and before the tests so that their
#    summary is the run's last line; an audit that cannot run is reported, never fatal.
if [ $# -eq 0 ]; then
  log "audit of requirements/*.lock"
  python scripts/audit.py || echo "audit: could not complete (exit $?); see above"
fi

# 6. Tests. The harness fixtures start PostgreSQL, the S3 server and the cluster themselves (one
#    cluster per worker). A crashed worker ends the run at once rather than being replaced.
log "pytest"
mkdir -p test-output
python -m pytest -n "${MODELPORT_TEST_WORKERS:-2}" --dist load --max-worker-restart=0 \
  --junitxml=test-output/junit.xml "$@"
