#!/usr/bin/env bash
# Builds daprd from the Go module github.com/dapr/dapr at a pinned version and caches the binary
# at ~/.cache/edgecloud/dapr/<version>/daprd (skipped when cached; scripts/go-build.sh).
# `allcomponents` fails on current Go (old deps cloudwego/frugal, choleraehyq/pid): stablecomponents.
set -euo pipefail

version=${DAPR_VERSION:-1.14.0}
dest=${EDGECLOUD_DAPR_CACHE:-$HOME/.cache/edgecloud/dapr}/$version
GO_TAGS=stablecomponents exec "$(dirname "$0")/go-build.sh" "daprd $version" "$dest" \
  "github.com/dapr/dapr@v$version" ./cmd/daprd=daprd
