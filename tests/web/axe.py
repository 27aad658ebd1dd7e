"""axe-core, the accessibility and contrast checker the browser tests inject into each view.

It comes from npm (``npm pack axe-core@4``) into Modelport's cache folder outside the checkout:
axe-core is MPL-2.0 and over half a megabyte minified, so the repository does not carry a copy.
``scripts/test.sh`` runs ``python -m tests.web.axe`` to fetch it once per machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

#: The npm package spec: the latest 4.x.
PACKAGE = "axe-core@4"


def cache_dir() -> Path:
    """Where scripts/test.sh keeps what it installs (``MODELPORT_CACHE`` or the XDG cache)."""
    if explicit := os.environ.get("MODELPORT_CACHE"):
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "modelport"


def axe_script() -> Path:
    """The path of ``axe.min.js``, fetched with npm the first time."""
    folder = cache_dir() / "axe-core"
    script = folder / "axe.min.js"
    if script.exists():
        return script
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to fetch axe-core (scripts/test.sh installs it)")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [npm, "pack", PACKAGE, "--silent", "--pack-destination", tmp],
            check=True,
            timeout=300,
            stdout=subprocess.DEVNULL,
        )
        tarball = next(Path(tmp).glob("axe-core-*.tgz"))
        with tarfile.open(tarball) as tar:
            for name in ("axe.min.js", "LICENSE"):
                member = tar.extractfile(f"package/{name}")
                assert member is not None, name
                partial = folder / f".{name}.partial"
                partial.write_bytes(member.read())
                partial.replace(folder / name)
    return script


if __name__ == "__main__":
    print(axe_script())
