"""Deployment to clusters (k3s): rendering the repo manifests for a node, applying them."""
