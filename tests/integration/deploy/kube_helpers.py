"""kubectl against the test API server (the binary ``make install`` builds)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from edgecloud.dev.kube import KubeCluster, k8s_binary

ROOT = Path(__file__).resolve().parents[3]


def kubectl(
    cluster: KubeCluster, *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    argv = [k8s_binary("kubectl"), f"--kubeconfig={cluster.kubeconfig}", *args]
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: rc {done.returncode}\n{done.stderr}")
    return done
