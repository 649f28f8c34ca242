#!/usr/bin/env bash
# `make images`: the project's container images, built on the project's own dockerd
# (scripts/dockerd.sh) from a base image made here, never pulled from a registry:
#   edgecloud-base:bookworm   scripts/base-image.sh: debootstrap --variant=minbase bookworm,
#                             docker import; the rootfs tarball is cached in ~/.cache/edgecloud/images/base/
#   edgecloud:<version>       the wheel built from this repo (Dockerfile), every role
#   edgecloud-postgres:15, edgecloud-mosquitto:2, edgecloud-kafka:<kafka>, edgecloud-daprd:<dapr>
#   edgecloud-devcontainer    only when named (.devcontainer/Dockerfile)
# Warm builds reuse the layers kept in dockerd's data root. `scripts/images.sh edgecloud kafka`
# builds a subset (`base`: only the base image). The daemon is left running
# (scripts/dockerd.sh stop ends it). Build steps that install packages use --network host.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${EDGECLOUD_IMAGES_CACHE:-$HOME/.cache/edgecloud/images}
kafka_version=${KAFKA_VERSION:-4.1.0}
dapr_version=${DAPR_VERSION:-1.14.0}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/pyproject.toml" | head -1)
images=${*:-edgecloud postgres mosquitto kafka daprd}
base=edgecloud-base:bookworm

"$root/scripts/dockerd.sh" start
eval "$("$root/scripts/dockerd.sh" env)"
docker=$(command -v /usr/bin/docker || command -v docker)
work=$(mktemp -d "${TMPDIR:-/tmp}/edgecloud-images.XXXXXX")
trap 'rm -rf "$work"' EXIT
t0=$SECONDS

build() {  # name tag context [dockerfile]
  local name=$1 tag=$2 ctx=$3 file=${4:-$3/Dockerfile} start=$SECONDS
  "$docker" build --force-rm --network host --build-arg "BASE=$base" -q -t "$name:$tag" -f "$file" "$ctx" >/dev/null
  echo "images: $name:$tag built in $((SECONDS - start)) s" >&2
}

edgecloud_image() {
  local ctx=$work/edgecloud extras=${EDGECLOUD_IMAGE_EXTRAS:-edge,sync,cloud}
  mkdir -p "$ctx/dist" "$ctx/wheels" "$ctx/models"
  # reproducible wheel (zip timestamps from the last commit): unchanged code, cached layers
  SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 315532800) \
    "$root/.venv/bin/python" -m pip wheel -q --no-deps -w "$ctx/dist" "$root" >/dev/null
  # The host's Python must be the image's (3.11, bookworm's glibc) for its wheels to fit.
  "$root/.venv/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || { echo "images: .venv is not Python 3.11 (bookworm's, the image's)" >&2; exit 1; }
  "$root/.venv/bin/python" -m pip wheel -q -w "$ctx/wheels" "$(ls "$ctx"/dist/*.whl)[$extras]" >/dev/null
  rm -f "$ctx"/wheels/edgecloud-*.whl
  cp -r "$root/models/bundles" "$ctx/models/bundles"
  # the deps stage tagged too: untagged, `image prune` below would drop the layer cache
  local stage
  for stage in deps final; do
    "$docker" build --force-rm --network host --build-arg "BASE=$base" -q \
      $([ $stage = deps ] && echo "--target deps -t edgecloud-deps:cache" || echo "-t edgecloud:$version") \
      -f "$root/Dockerfile" "$ctx" >/dev/null
  done
  "$docker" tag "edgecloud:$version" edgecloud:latest
  echo "images: edgecloud:$version built" >&2
}

"$root/scripts/base-image.sh"
for image in $images; do
  start=$SECONDS
  case $image in
    edgecloud) edgecloud_image ;;
    postgres) build edgecloud-postgres 15 "$root/deploy/images/postgres" ;;
    mosquitto) build edgecloud-mosquitto 2 "$root/deploy/images/mosquitto" ;;
    kafka)
      libs=$HOME/.cache/edgecloud/kafka/$kafka_version/libs
      [ -d "$libs" ] || { echo "images: no Kafka jars in $libs (make install)" >&2; exit 1; }
      cp -r "$root/deploy/images/kafka" "$work/kafka"
      cp -r "$libs" "$work/kafka/libs"
      cp "$root/deploy/kafka/log4j2.xml" "$work/kafka/"
      build edgecloud-kafka "$kafka_version" "$work/kafka" ;;
    daprd)
      bin=$HOME/.cache/edgecloud/dapr/$dapr_version/daprd
      [ -x "$bin" ] || { echo "images: no daprd at $bin (make install)" >&2; exit 1; }
      cp -r "$root/deploy/images/daprd" "$work/daprd"
      cp "$bin" "$work/daprd/daprd"
      build edgecloud-daprd "$dapr_version" "$work/daprd" ;;
    base) ;;
    devcontainer) build edgecloud-devcontainer latest "$root/.devcontainer" ;;
    *) echo "images: unknown image $image" >&2; exit 2 ;;
  esac
  echo "images: $image done in $((SECONDS - start)) s" >&2
done
# images a rebuild replaced (untagged, no children): their layers are no cache for anything
"$docker" image prune -f >/dev/null
echo "images: all done in $((SECONDS - t0)) s" >&2
"$docker" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^edgecloud' | sort >&2
