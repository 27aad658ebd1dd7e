"""The harness's pure parts: versions and cache keys, certificates, node and flag builders."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from testing.harness import binaries, components
from testing.harness.binaries import (
    BINARIES,
    STAMP,
    BinariesError,
    cache_root,
    is_complete,
    required_version,
    tool_versions,
)
from testing.harness.nodes import GPU_RESOURCE, GPU_TAINT_KEY, KWOK_ANNOTATION, default_nodes
from testing.harness.pki import ADMIN_GROUP, write_pki

GO_MOD = """module modelport.io/tools/k8s/x

go 1.26.0

require helm.sh/helm/v3 v3.22.0

require (
\tk8s.io/kubernetes v1.36.3
\tk8s.io/api v0.36.3 // indirect
)
"""


@pytest.mark.parametrize(
    ("module", "version"), [("helm.sh/helm/v3", "v3.22.0"), ("k8s.io/kubernetes", "v1.36.3")]
)
def test_required_version_reads_single_lines_and_blocks(module: str, version: str) -> None:
    assert required_version(GO_MOD, module) == version


def test_required_version_refuses_a_module_not_required() -> None:
    with pytest.raises(BinariesError):
        required_version(GO_MOD, "k8s.io/kube")


def test_pinned_versions_name_the_cache_entry() -> None:
    key = tool_versions().key

    assert key.startswith("k8s-v1.")
    assert all(part in key for part in ("-etcd-v3.", "-helm-v3.", "-kwok-v0."))


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"MODELPORT_CACHE": "/c", "XDG_CACHE_HOME": "/x"}, "/c/k8s-bin"),
        ({"XDG_CACHE_HOME": "/x"}, "/x/modelport/k8s-bin"),
        ({}, str(Path.home() / ".cache/modelport/k8s-bin")),
    ],
)
def test_cache_root_follows_the_environment(environ: dict[str, str], expected: str) -> None:
    assert cache_root(environ) == Path(expected)


def test_a_build_without_its_stamp_is_not_trusted(tmp_path: Path) -> None:
    for name in BINARIES:
        (tmp_path / name).write_text("")
    assert not is_complete(tmp_path)

    (tmp_path / STAMP).write_text("done\n")
    assert is_complete(tmp_path)

    (tmp_path / "kwok").unlink()
    assert not is_complete(tmp_path)


def test_pki_chains_to_the_ca_with_the_right_names(tmp_path: Path) -> None:
    pki = write_pki(tmp_path)
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    admin = x509.load_pem_x509_certificate(pki.admin_cert.read_bytes())

    for cert in (server, admin):
        cert.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
    organizations = admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert [o.value for o in organizations] == [ADMIN_GROUP]
    usage = admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert pki.admin_key.stat().st_mode & 0o077 == 0


def test_default_nodes_are_two_cpu_and_two_tainted_gpu_nodes() -> None:
    nodes = default_nodes()
    gpu = [n for n in nodes if GPU_RESOURCE in n["status"]["capacity"]]
    cpu = [n for n in nodes if n not in gpu]

    assert (len(cpu), len(gpu)) == (2, 2)
    assert all(n["metadata"]["annotations"][KWOK_ANNOTATION] == "fake" for n in nodes)
    assert all(n["spec"]["taints"][0]["key"] == GPU_TAINT_KEY for n in gpu)
    assert all("taints" not in n["spec"] for n in cpu)


def test_apiserver_flags_enable_rbac_and_token_signing(tmp_path: Path) -> None:
    pki = write_pki(tmp_path)
    ports = components.Ports.from_list([1, 2, 3, 4, 5])

    argv = components.apiserver_args(tmp_path, pki, ports, tmp_path / "certs")

    assert "--authorization-mode=Node,RBAC" in argv
    assert f"--service-account-signing-key-file={pki.sa_key}" in argv
    assert "--secure-port=3" in argv
    assert "--etcd-servers=http://127.0.0.1:1" in argv


FAKE_BUILD = """set -eu
echo run >> "$(dirname "$1")/runs"
for b in {binaries}; do : > "$1/$b"; done
{finish}
"""


def fake_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, succeed: bool) -> Path:
    script = tmp_path / "build.sh"
    finish = 'echo done > "$1/.complete"' if succeed else "exit 3"
    script.write_text(FAKE_BUILD.format(binaries=" ".join(BINARIES), finish=finish))
    monkeypatch.setattr(binaries, "BUILD_SCRIPT", script)
    monkeypatch.setenv("MODELPORT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "k8s-bin"


def test_ensure_binaries_builds_once_and_clears_killed_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = fake_build(tmp_path, monkeypatch, succeed=True)
    stale = root / f"{tool_versions().key}.build-killed"
    stale.mkdir(parents=True)

    first = binaries.ensure_binaries()
    second = binaries.ensure_binaries()

    assert first == second == root / tool_versions().key
    assert is_complete(first)
    assert not stale.exists()
    assert (root / "runs").read_text() == "run\n"


def test_a_failed_build_leaves_nothing_to_trust(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = fake_build(tmp_path, monkeypatch, succeed=False)

    with pytest.raises(BinariesError):
        binaries.ensure_binaries()

    assert sorted(p.name for p in root.iterdir()) == [f"{tool_versions().key}.lock", "runs"]
    with pytest.raises(BinariesError):
        binaries.ensure_binaries(build=False)
