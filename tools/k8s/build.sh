#!/usr/bin/env bash
# Builds the pinned control-plane binaries of Modelport's end-to-end test
# cluster from their Go modules (no containers, no release downloads).
#
#   tools/k8s/build.sh OUT_DIR
#
# Each tool lives in its own module (kube/, etcd/, helm/, kwok/) so that
# minimal version selection never mixes their dependency graphs. The
# versions are the `require` lines of those go.mod files; go.sum pins the
# rest. OUT_DIR/.complete is written last: a directory without it is a
# half-finished build and must not be used.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: build.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# $GO if set, else the official toolchain's usual place, else whatever go is on PATH (>= 1.26).
go=${GO:-}
if [ -z "$go" ]; then
	if [ -x /usr/local/go/bin/go ]; then go=/usr/local/go/bin/go; else go=$(command -v go); fi
fi
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

# required_version DIR MODULE -> the version DIR/go.mod requires of MODULE
required_version() {
	awk -v mod="$2" '
		$1 == "require" && $2 == mod { print $3 }
		$1 == "require" && $2 == "(" { block = 1; next }
		block && $1 == ")" { block = 0 }
		block && $1 == mod { print $2 }
	' "$here/$1/go.mod" | grep . || { echo "build.sh: $1/go.mod does not require $2" >&2; return 1; }
}

step() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*"; }

# Run go in the background and wait for it, so that a TERM or INT (sent when the test run that
# started this build dies) stops the compiler at once instead of leaving it running.
child=
trap 'if [ -n "$child" ]; then kill "$child" 2>/dev/null; fi; exit 143' TERM INT
run_go() {
	"$go" "$@" &
	child=$!
	wait "$child"
	child=
}

build_kube() {
	local v minor ldflags
	v=$(required_version kube k8s.io/kubernetes)
	minor=$(echo "$v" | cut -d. -f2)
	ldflags="-s -w"
	ldflags+=" -X k8s.io/component-base/version.gitVersion=$v"
	ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
	ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor"
	ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
	ldflags+=" -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
	ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$v"
	ldflags+=" -X k8s.io/client-go/pkg/version.gitMajor=1"
	ldflags+=" -X k8s.io/client-go/pkg/version.gitMinor=$minor"
	step "kube $v: kube-apiserver kube-controller-manager kube-scheduler kubectl"
	run_go -C "$here/kube" build -trimpath -tags selinux,notest -ldflags "$ldflags" -o "$out/" \
		k8s.io/kubernetes/cmd/kube-apiserver \
		k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler \
		k8s.io/kubernetes/cmd/kubectl
}

build_etcd() {
	step "etcd $(required_version etcd go.etcd.io/etcd/server/v3)"
	run_go -C "$here/etcd" build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
}

build_helm() {
	local v
	v=$(required_version helm helm.sh/helm/v3)
	step "helm $v"
	run_go -C "$here/helm" build -trimpath \
		-ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
		-o "$out/helm" helm.sh/helm/v3/cmd/helm
}

build_kwok() {
	local v moddir
	v=$(required_version kwok sigs.k8s.io/kwok)
	step "kwok $v"
	run_go -C "$here/kwok" build -trimpath \
		-ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$v" \
		-o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok
	# Standalone kwok ships no default stages; take them from the module.
	moddir=$("$go" -C "$here/kwok" list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
	mkdir -p "$out/kwok-stages"
	for f in node/fast/node-initialize.yaml \
		node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
		pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
		cp "$moddir/kustomize/stage/$f" "$out/kwok-stages/$(basename "$f")"
	done
	chmod -R u+w "$out/kwok-stages"
}

start=$SECONDS
build_etcd
build_kwok
build_helm
build_kube
{
	echo "kubernetes=$(required_version kube k8s.io/kubernetes)"
	echo "etcd=$(required_version etcd go.etcd.io/etcd/server/v3)"
	echo "helm=$(required_version helm helm.sh/helm/v3)"
	echo "kwok=$(required_version kwok sigs.k8s.io/kwok)"
	echo "go=$("$go" env GOVERSION)"
	echo "seconds=$((SECONDS - start))"
} >"$out/.complete"
step "done in $((SECONDS - start))s: $out"
