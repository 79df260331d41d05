#!/usr/bin/env bash
# Builds the kube-apiserver and etcd binaries that the chart tests start on
# loopback, from the Go module proxy at pinned versions, into a cache
# directory outside the repository. A binary that is already there for the
# pinned version is reused, so only the first run on a machine (or the first
# after a version change) pays for the build (about 13 minutes, 2.5 GB of
# memory, 4.6 GB of Go build cache).
#
# Prints the directory holding `kube-apiserver` and `etcd` on its last line.
#
#   deploy/helmtest/build-k8s.sh            # build if missing, print the dir
#   AIRSHIP_K8S_CACHE=/tmp/k8s build-k8s.sh # another cache directory
set -euo pipefail

KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.6.16

cache=${AIRSHIP_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/airship-k8s}
bindir=$cache/bin-kube-$KUBE_VERSION-etcd-$ETCD_VERSION
mkdir -p "$cache"

# One build at a time per cache directory; a second caller waits and then
# finds the binaries.
exec 9>"$cache/.lock"
flock 9

if [[ -x $bindir/kube-apiserver && -x $bindir/etcd ]]; then
  echo "$bindir"
  exit 0
fi

# The wrapper modules below are throw-away modules generated here; only for
# them is the checksum database switched off (it cannot be reached for them
# on every machine). The project's own modules keep GOSUMDB.
export GOSUMDB=off GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
log() { echo "build-k8s: $*" >&2; }
start=$(date +%s)
mkdir -p "$bindir"
tmp=$bindir/.tmp
rm -rf "$tmp" && mkdir -p "$tmp"

# kube-apiserver: k8s.io/kubernetes cannot be `go install`ed (its go.mod
# replaces the staging modules with local directories), so a wrapper module
# requires it and replaces each staging module k8s.io/X with its published
# version v0.MINOR.PATCH.
if [[ ! -x $bindir/kube-apiserver ]]; then
  log "building kube-apiserver $KUBE_VERSION"
  w=$cache/wrap-kube-apiserver-$KUBE_VERSION
  rm -rf "$w" && mkdir -p "$w"
  src=$(cd "$w" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -d $src ]] || { log "cannot download k8s.io/kubernetes@$KUBE_VERSION"; exit 1; }
  cp "$src/cmd/kube-apiserver/apiserver.go" "$w/main.go"
  chmod u+w "$w/main.go"
  staging=v0.${KUBE_VERSION#v1.}
  {
    echo "module airship.local/kube-apiserver"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//')"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/.*#replace \1 => \1 '"$staging"'#p' "$src/go.mod"
  } >"$w/go.mod"
  grep -q '^replace k8s.io/api ' "$w/go.mod" || { log "no staging replaces found in k8s.io/kubernetes go.mod"; exit 1; }
  (cd "$w" && go mod tidy)
  minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  pkg=k8s.io/component-base/version
  (cd "$w" && go build -trimpath -o "$tmp/kube-apiserver" \
    -ldflags "-s -w -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" .)
  mv "$tmp/kube-apiserver" "$bindir/kube-apiserver"
fi

# etcd: go.etcd.io/etcd/server/v3 has replaces too; its etcdmain package is
# called from a wrapper main.
if [[ ! -x $bindir/etcd ]]; then
  log "building etcd $ETCD_VERSION"
  w=$cache/wrap-etcd-$ETCD_VERSION
  rm -rf "$w" && mkdir -p "$w"
  cat >"$w/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  cat >"$w/go.mod" <<MOD
module airship.local/etcd

go $(go env GOVERSION | sed 's/^go//')

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  (cd "$w" && go mod tidy && go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" .)
  mv "$tmp/etcd" "$bindir/etcd"
fi

rm -rf "$tmp"
log "built in $(( $(date +%s) - start ))s into $bindir"
echo "$bindir"
