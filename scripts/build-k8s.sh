#!/usr/bin/env bash
# Builds the Kubernetes binaries of the test stack from the build module deploy/k8s-build
# (k8s.io/kubernetes v1.34.2 with its staging modules pinned to v0.34.2; etcd v3.6.4) and caches
# them at ~/.cache/edgecloud/k8s/<version>/: kube-apiserver, kubectl (kustomize built in), etcd.
# K8S_KUBELET=1 adds kubelet (not needed by the tests). Skipped when cached (scripts/go-build.sh).
set -euo pipefail

version=v1.34.2
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${EDGECLOUD_K8S_CACHE:-$HOME/.cache/edgecloud/k8s}/$version
targets=(k8s.io/kubernetes/cmd/kube-apiserver=kube-apiserver
  k8s.io/kubernetes/cmd/kubectl=kubectl go.etcd.io/etcd/server/v3=etcd)
[ "${K8S_KUBELET:-0}" = 1 ] && targets+=(k8s.io/kubernetes/cmd/kubelet=kubelet)
# the version the binaries report (kubectl and clients compare it; unset it says v0.0.0-master)
v=k8s.io/component-base/version
export GO_LDFLAGS="-s -w -X $v.gitVersion=$version -X $v.gitMajor=1 -X $v.gitMinor=34"
exec "$root/scripts/go-build.sh" "kubernetes $version" "$dest" "$root/deploy/k8s-build" "${targets[@]}"
