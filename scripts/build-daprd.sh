#!/usr/bin/env bash
# Builds daprd from the Go module github.com/dapr/dapr at a pinned version and caches the binary
# at ~/.cache/edgecloud/dapr/<version>/daprd (skipped when cached). Needs a Go toolchain; with
# GOTOOLCHAIN=auto (the default) an older Go fetches the one the module asks for from the Go proxy.
# `allcomponents` fails on current Go (old deps cloudwego/frugal, choleraehyq/pid): stablecomponents.
set -euo pipefail

version=${DAPR_VERSION:-1.14.0}
dest=${EDGECLOUD_DAPR_CACHE:-$HOME/.cache/edgecloud/dapr}/$version
bin=$dest/daprd
if [ -x "$bin" ]; then
  echo "daprd $version: cached ($bin)"
  exit 0
fi
go=$(command -v go || echo /usr/local/go/bin/go)
if [ ! -x "$go" ]; then
  echo "daprd: no Go toolchain (install golang-go); dev up --no-dapr runs without Dapr" >&2
  exit 1
fi
echo "daprd $version: building from github.com/dapr/dapr@v$version (several minutes on 2 cores)"
start=$(date +%s)
mkdir -p "$dest"
dir=$("$go" mod download -json "github.com/dapr/dapr@v$version" | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')
[ -d "$dir" ] || { echo "daprd: go mod download gave no module dir" >&2; exit 1; }
work=$(mktemp -d "$dest/src.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -r "$dir/." "$work/"
chmod -R u+w "$work"
(cd "$work" && CGO_ENABLED=0 "$go" build -trimpath -tags stablecomponents -ldflags "-s -w" \
  -o "$dest/daprd.partial" ./cmd/daprd)
mv "$dest/daprd.partial" "$bin"
echo "daprd $version: built in $(( $(date +%s) - start )) s ($bin)"
