# edgecloud: make install | make check | make test | make demo
# Stamps in .venv/.stamps make a warm `make install` take seconds; the Kafka jars are cached in
# ~/.cache/edgecloud/kafka/<version>/libs and pip's downloads in ~/.cache/pip (outside git).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMPS := $(VENV)/.stamps
PYTHON ?=
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install system kafka daprd promtool k8s images check lint typecheck imports schemas-check schemas test demo down

install: system $(STAMPS)/pip kafka daprd promtool k8s

system:
	@scripts/install-system.sh

$(STAMPS)/venv:
	@scripts/make-venv.sh $(VENV) $(PYTHON)
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/pip: pyproject.toml $(STAMPS)/venv
	$(PY) -m pip install -q -e '.[edge,sync,cloud,dev,k3s]'
	@touch $@

kafka: $(STAMPS)/pip
	@$(PY) -m edgecloud.dev.kafka_jars

# daprd built from the Go module github.com/dapr/dapr, cached in ~/.cache/edgecloud/dapr/<version>
daprd:
	@scripts/build-daprd.sh

# upstream promtool (with kubernetes_sd, which Debian's lacks), cached in ~/.cache/edgecloud/promtool/<version>
promtool:
	@scripts/build-promtool.sh

# container images on the project's own dockerd (scripts/images.sh; base from debootstrap, no registry)
images: install
	@scripts/images.sh

# kube-apiserver, kubectl, etcd (deploy/k8s-build), cached in ~/.cache/edgecloud/k8s/<version>
k8s:
	@scripts/build-k8s.sh

check: $(STAMPS)/pip lint typecheck imports schemas-check

lint:
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests

typecheck:
	$(VENV)/bin/mypy

imports:
	$(VENV)/bin/lint-imports

schemas-check:
	@$(PY) -c 'import sys; from pathlib import Path; from edgecloud.core.schemas import stale; \
	s = stale(Path("schemas")); print("schemas: stale " + ", ".join(s) + " (run make schemas)" if s else "schemas: up to date"); sys.exit(bool(s))'

schemas: $(STAMPS)/pip
	$(PY) -c 'from pathlib import Path; from edgecloud.core.schemas import export; export(Path("schemas"))'

# pytest exit code 5 means "no tests collected": not a failure here.
test: install
	$(MAKE) --no-print-directory check
	$(VENV)/bin/pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; rc=0; fi; exit $$rc

demo: install
	$(VENV)/bin/edgecloud dev up --demo

down:
	$(VENV)/bin/edgecloud dev down
