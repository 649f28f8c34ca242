"""Model registry: validated, signed bundles stored content-addressed (issue 6).

archive.py   safe extraction of an uploaded tar.gz / zip (no escaping paths, no links, limits)
validate.py  manifest, ONNX checker, external data, sha256, signature against operator keys
store.py     the artifact store: files named by their sha256 under ``registry_dir``
tables.py    operator_keys, model_versions
service.py   register / list / get, operator keys
settings.py  RegistrySettings (``EDGECLOUD_REGISTRY_*``, ``EDGECLOUD_OPERATOR_PUBLIC_KEYS``)
"""
