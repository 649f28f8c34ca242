#!/usr/bin/env bash
# Builds upstream promtool from the Go module github.com/prometheus/prometheus at the version of
# Debian's prometheus package (2.42) and caches it at ~/.cache/edgecloud/promtool/<version>/.
# Debian builds Prometheus without Kubernetes service discovery, so its promtool refuses
# kubernetes_sd_configs: this one checks the k3s config (deploy/prometheus/prometheus-k3s.yml).
# Skipped when cached. Needs a Go toolchain (as scripts/build-daprd.sh).
set -euo pipefail

version=${PROMTOOL_VERSION:-2.42.0}
dest=${EDGECLOUD_PROMTOOL_CACHE:-$HOME/.cache/edgecloud/promtool}/$version
bin=$dest/promtool
if [ -x "$bin" ]; then
  echo "promtool $version: cached ($bin)"
  exit 0
fi
go=$(command -v go || echo /usr/local/go/bin/go)
if [ ! -x "$go" ]; then
  echo "promtool: no Go toolchain (install golang-go); the k3s Prometheus config test needs it" >&2
  exit 1
fi
echo "promtool $version: building from github.com/prometheus/prometheus@v0.${version#2.} (minutes on 2 cores)"
start=$(date +%s)
mkdir -p "$dest"
dir=$("$go" mod download -json "github.com/prometheus/prometheus@v0.${version#2.}" | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')
[ -d "$dir" ] || { echo "promtool: go mod download gave no module dir" >&2; exit 1; }
work=$(mktemp -d "$dest/src.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -r "$dir/." "$work/"
chmod -R u+w "$work"
(cd "$work" && CGO_ENABLED=0 "$go" build -trimpath \
  -ldflags "-s -w -X github.com/prometheus/common/version.Version=$version" \
  -o "$dest/promtool.partial" ./cmd/promtool)
mv "$dest/promtool.partial" "$bin"
echo "promtool $version: built in $(( $(date +%s) - start )) s ($bin)"
