#!/usr/bin/env bash
# Builds Go binaries into a cache dir outside the repo, skipped when all of them are there.
#
#   scripts/go-build.sh NAME DEST SOURCE PKG=BINARY [PKG=BINARY...]
#
# NAME: what the messages call it; DEST: the cache dir (~/.cache/edgecloud/<thing>/<version>);
# SOURCE: module@version (downloaded from the Go proxy, built inside a copy of its tree, as a
# module that `go install` refuses because its go.mod has replace directives) or a directory
# holding a build module (go.mod + go.sum, e.g. deploy/k8s-build). PKG is a package path
# relative to the module (./cmd/daprd) or a full import path (k8s.io/kubernetes/cmd/kubectl).
# Environment: GO_TAGS (build tags), GO_LDFLAGS (default "-s -w"), GO_CGO (default 0).
# Needs a Go toolchain; with GOTOOLCHAIN=auto (the default) an older Go fetches the one the
# module asks for from the Go proxy.
set -euo pipefail

[ $# -ge 4 ] || { echo "usage: $0 NAME DEST SOURCE PKG=BINARY..." >&2; exit 2; }
name=$1 dest=$2 source=$3
shift 3
missing=0
for target in "$@"; do
  [ -x "$dest/${target#*=}" ] || missing=1
done
if [ "$missing" = 0 ]; then
  echo "$name: cached ($dest)"
  exit 0
fi
go=$(command -v go || echo /usr/local/go/bin/go)
if [ ! -x "$go" ]; then
  echo "$name: no Go toolchain (install golang-go)" >&2
  exit 1
fi
mkdir -p "$dest"
start=$(date +%s)
if [ -d "$source" ]; then
  work=$(cd "$source" && pwd)
  echo "$name: building from the build module $source (minutes on 2 cores)"
else
  echo "$name: building from $source (minutes on 2 cores)"
  dir=$("$go" mod download -json "$source" | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')
  [ -d "$dir" ] || { echo "$name: go mod download $source gave no module dir" >&2; exit 1; }
  work=$(mktemp -d "$dest/src.XXXXXX")
  trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
  cp -r "$dir/." "$work/"
  chmod -R u+w "$work"
fi
for target in "$@"; do
  pkg=${target%%=*} bin=${target#*=}
  [ -x "$dest/$bin" ] && continue
  (cd "$work" && CGO_ENABLED=${GO_CGO:-0} "$go" build -trimpath -tags "${GO_TAGS:-}" \
    -ldflags "${GO_LDFLAGS:--s -w}" -o "$dest/$bin.partial" "$pkg")
  mv "$dest/$bin.partial" "$dest/$bin"
  echo "$name: $bin built"
done
echo "$name: built in $(( $(date +%s) - start )) s ($dest)"
