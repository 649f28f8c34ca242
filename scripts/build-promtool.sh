#!/usr/bin/env bash
# Builds upstream promtool from the Go module github.com/prometheus/prometheus at the version of
# Debian's prometheus package (2.42) and caches it at ~/.cache/edgecloud/promtool/<version>/.
# Debian builds Prometheus without Kubernetes service discovery, so its promtool refuses
# kubernetes_sd_configs: this one checks the k3s config (deploy/prometheus/prometheus-k3s.yml).
# Skipped when cached (scripts/go-build.sh).
set -euo pipefail

version=${PROMTOOL_VERSION:-2.42.0}
dest=${EDGECLOUD_PROMTOOL_CACHE:-$HOME/.cache/edgecloud/promtool}/$version
GO_LDFLAGS="-s -w -X github.com/prometheus/common/version.Version=$version" \
  exec "$(dirname "$0")/go-build.sh" "promtool $version" "$dest" \
  "github.com/prometheus/prometheus@v0.${version#2.}" ./cmd/promtool=promtool
