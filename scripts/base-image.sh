#!/usr/bin/env bash
# The project's base image, edgecloud-base:bookworm, in the Docker engine that `docker` reaches
# now (DOCKER_HOST): `debootstrap --variant=minbase bookworm` once (root; a minute or a few),
# cached as a tarball in ~/.cache/edgecloud/images/base/, then `docker import`. No registry.
# Used by scripts/images.sh (the project's own dockerd) and by .devcontainer (your editor's).
set -euo pipefail

cache=${EDGECLOUD_IMAGES_CACHE:-$HOME/.cache/edgecloud/images}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
base=edgecloud-base:bookworm
tar=$cache/base/bookworm-minbase.tar
docker=$(command -v /usr/bin/docker || command -v docker)

if "$docker" image inspect "$base" >/dev/null 2>&1; then exit 0; fi
if [ ! -s "$tar" ]; then
  command -v debootstrap >/dev/null || { echo "base image: debootstrap missing (make install)" >&2; exit 1; }
  echo "base image: debootstrap --variant=minbase bookworm (a minute or a few)" >&2
  start=$SECONDS
  mkdir -p "$cache/base"
  work=$(mktemp -d "$cache/base/rootfs.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  rootfs=$work/rootfs
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  printf '%s\n' "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" \
    >"$rootfs/etc/apt/sources.list"
  tar -C "$rootfs" --numeric-owner -cf "$tar.partial" .
  mv "$tar.partial" "$tar"
  echo "base image: rootfs in $((SECONDS - start)) s ($tar)" >&2
fi
"$docker" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' "$tar" "$base" >/dev/null
echo "base image: $base imported" >&2
