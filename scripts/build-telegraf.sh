#!/usr/bin/env bash
# Builds Telegraf (the benchmark peer of `edgecloud bench bridge|cloud --peer telegraf`) from the Go
# module github.com/influxdata/telegraf at a pinned version, with only the plugins the benchmark
# uses (Telegraf's custom build tags), and caches it at ~/.cache/edgecloud/telegraf/<version>/.
# Skipped when cached. Built only by the benchmark's set-up (scripts/bench-all.sh, or by hand),
# never by `make install` / `make test`. Needs a Go toolchain (as scripts/build-daprd.sh).
set -euo pipefail

version=${TELEGRAF_VERSION:-1.37.2}
dest=${EDGECLOUD_TELEGRAF_CACHE:-$HOME/.cache/edgecloud/telegraf}/$version
# The tags name plugins as in plugins/*/all/<name>.go (`//go:build !custom || inputs.mqtt_consumer`).
tags=custom
tags+=,inputs.mqtt_consumer,inputs.kafka_consumer
tags+=,outputs.kafka,outputs.postgresql,outputs.discard
tags+=,parsers.json,parsers.json_v2,parsers.value,parsers.influx
tags+=,serializers.json,serializers.influx,serializers.template
tags+=,processors.regex,processors.converter
# -mod=mod: the module is built inside a copy of its tree (scripts/go-build.sh) as a main module.
export GOFLAGS=-mod=mod
GO_TAGS=$tags GO_LDFLAGS="-s -w -X github.com/influxdata/telegraf/internal.Version=$version" \
  exec "$(dirname "$0")/go-build.sh" "telegraf $version" "$dest" \
  "github.com/influxdata/telegraf@v$version" ./cmd/telegraf=telegraf
