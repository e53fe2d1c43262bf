# brewline: `make demo` and `make test` do all setup on a fresh Debian 12 machine.
# Both are safe to run twice: each step checks what is there before installing.

SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEBS := buildah podman skopeo docker-registry runc uidmap prometheus hey openssh-client
# Commands each Debian package brings, to skip apt when they are all there.
DEB_COMMANDS := buildah podman skopeo docker-registry runc prometheus hey ssh-keygen

.PHONY: help setup debs venv up down demo demo-bad worker test test-fast lint bench bench-rollback bench-judge bench-load chaos clean

help:
	@echo "make demo   set up, start the local platform and a worker, release api-gateway to the approval gate"
	@echo "make test   set up and run the whole test suite"
	@echo "make demo-bad   release a faulty api-gateway (20% errors) and watch the canary roll it back"
	@echo "make chaos  kill the worker and restart Temporal during real releases (CHAOS_ARGS=\"--seed N --runs N\")"
	@echo "make bench-load   100 releases at once on one bounded worker, simulated activities (BENCH_LOAD_ARGS=\"--releases N --max-activities N\")"
	@echo "make up | down | worker | lint | bench | bench-rollback | bench-judge | bench-load | clean"

setup: debs venv

debs:
	@missing=""; for c in $(DEB_COMMANDS); do command -v $$c >/dev/null || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages (missing:$$missing)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(DEBS) >/dev/null; \
	fi
	@command -v terraform >/dev/null || { echo "terraform 1.11 is not on PATH: install it (see README)"; exit 1; }

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[tools,dev]'
	$(PY) helm/install-helm.py --dest $(VENV)/bin
	@touch $@

up: setup
	$(PY) -m local.platform up

down:
	@if [ -x $(PY) ]; then $(PY) -m local.platform down; fi

worker: up
	$(PY) -m local.platform up --with-worker

demo: setup
	$(PY) -m local.demo

demo-bad: setup
	$(PY) -m local.demo bad

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not e2e"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

bench: setup
	$(PY) -m bench.orchestration

bench-rollback: setup
	$(PY) -m bench.rollback

bench-judge: setup
	$(PY) -m bench.judge

BENCH_LOAD_ARGS ?= --releases 100 --max-activities 8
bench-load: setup
	$(PY) -m bench.load $(BENCH_LOAD_ARGS)

# 2 runs x 4 releases, each undisturbed then disturbed: >= 30 kills (about 1.5 h on 2 cores)
CHAOS_ARGS ?= --runs 2 --releases-per-run 4
chaos: setup
	$(PY) -m local.chaos $(CHAOS_ARGS)

clean: down
	rm -rf .brewline
