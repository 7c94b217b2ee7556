# hotstandby.postgresql: the two commands of the README, and their parts.
#   make demo   build a real primary + hot standby in local containers
#   make test   everything CI checks (.ci/run runs exactly this)
# Both set up what they need on a fresh Debian machine as root.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_FORCE_COLOR ?= false
export PY_COLORS ?= 0

LAB := $(CURDIR)/scripts/lab
SUITE ?= bookworm
BUILD := $(CURDIR)/build
COLLECTION_VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
ARTIFACT := $(BUILD)/hotstandby-postgresql-$(COLLECTION_VERSION).tar.gz
INSTALLED := $(BUILD)/install
SANITY_BASE := $(or $(TMPDIR),/tmp)/hotstandby.postgresql-sanity
SANITY_ROOT := $(SANITY_BASE)/ansible_collections/hotstandby/postgresql

DEMO_DIR := $(CURDIR)/.lab/demo
DEMO_PRIMARY := hs-demo-primary
DEMO_STANDBY := hs-demo-standby

.PHONY: help demo demo-down test checks venv host-deps lab lab-engine lab-images unit lint sanity build molecule molecule-all molecule-queue molecule-run test-queue bench clean

help:
	@echo "make demo       build a primary and a hot standby in local containers and show them replicating"
	@echo "make demo-down  remove the demo containers"
	@echo "make test       everything CI checks: unit, lint, sanity, build + offline install, molecule"
	@echo "make bench      time pair builds, re-runs and clones against hand-made lower bounds"

# The version matrix: the default scenario once more on every other suite
# (Debian 11 / PostgreSQL 13, 13 / 17, sid / 18; bookworm / 15 runs with the
# rest), and the switchover on the oldest supported version too (from its
# image with the packages preinstalled: the default runs test the install
# there).
MATRIX_SUITES := bullseye trixie sid
SWITCHOVER_SUITE := bullseye

## --- set-up -----------------------------------------------------------------

host-deps:
	@$(CURDIR)/scripts/host-deps

$(BIN)/.installed: requirements.txt | host-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

venv: $(BIN)/.installed

# Every image the scenarios use, per suite (lab-images.SUITE; lab-images:
# all of them). Every bookworm scenario but default and inputs (which test the
# install from nothing, as the matrix does) starts from bookworm with
# PostgreSQL's packages preinstalled (`scripts/lab image-ready`): 25-40 s less
# each; so does the switchover on bullseye.
READY_SUITES := bookworm $(SWITCHOVER_SUITE)
LAB_IMAGE_TARGETS := $(addprefix lab-images.,bookworm $(MATRIX_SUITES))

lab-engine: venv
	$(LAB) engine

lab: lab-engine
	$(LAB) image $(SUITE) >/dev/null

$(LAB_IMAGE_TARGETS): lab-images.%: lab-engine
	$(LAB) image $* >/dev/null
	$(if $(filter $*,$(READY_SUITES)),$(LAB) image-ready $* >/dev/null)

.PHONY: $(LAB_IMAGE_TARGETS)
lab-images: $(LAB_IMAGE_TARGETS)

## --- demo -------------------------------------------------------------------

demo: lab
	$(CURDIR)/scripts/demo up $(DEMO_DIR) $(DEMO_PRIMARY) $(DEMO_STANDBY)

demo-down:
	$(CURDIR)/scripts/demo down $(DEMO_DIR) $(DEMO_PRIMARY) $(DEMO_STANDBY)

## --- test -------------------------------------------------------------------

# One make, two jobs at a time: the checks first (CPU), the lab images
# (debootstrap: network and disk) beside them, then the molecule queue below,
# each run as soon as its suite's images and the installed artifact are there;
# --output-sync keeps each one's output together.
test: venv
	$(MAKE) --no-print-directory -j2 --output-sync=target test-queue \
	  COLLECTIONS=$(INSTALLED) MOLECULE_NEEDS=checks
	@echo "make test: all checks passed"

# In this order: every image builds beside a check (network and disk beside
# CPU), and the bookworm images are ready first.
test-queue: lab-images.bookworm unit lint $(filter-out lab-images.bookworm,$(LAB_IMAGE_TARGETS)) sanity build molecule-queue

checks: unit lint sanity build

unit: venv
	$(BIN)/pytest tests/unit

lint: venv
	$(BIN)/ansible-lint --profile production

# ansible-test needs the collection under ansible_collections/NAMESPACE/NAME,
# outside this git checkout (it would list files through the outer repository):
# sanity runs on a copy of the tracked and new (not ignored) files.
sanity: venv
	rm -rf $(SANITY_BASE)
	mkdir -p $(SANITY_ROOT)
	git ls-files -z --cached --others --exclude-standard -- . ':!playbooks/collections' \
	  | tar --null --files-from=- -cf - | tar -xf - -C $(SANITY_ROOT)
	$(BIN)/python $(CURDIR)/scripts/ansible_test_pip_cache.py $(CURDIR)/scripts/ansible_test_get_pip.py
	cd $(SANITY_ROOT) && $(BIN)/ansible-test sanity --venv --requirements --python 3.11 --color no

# Build the Galaxy artifact, check it holds only the collection, install it
# offline into a temporary path and use it from there.
build: venv
	rm -rf $(BUILD)/artifact $(INSTALLED)
	$(BIN)/ansible-galaxy collection build --force --output-path $(BUILD) .
	$(CURDIR)/scripts/check-artifact $(ARTIFACT)
	$(BIN)/ansible-galaxy collection install --offline --no-deps -p $(INSTALLED) $(ARTIFACT)
	for doc in managed_files pg_basebackup pg_basebackup_wait pg_rejoin pg_replication_info; do \
	  ANSIBLE_COLLECTIONS_PATH=$(INSTALLED) $(BIN)/ansible-doc hotstandby.postgresql.$$doc >/dev/null; done
	for doc in topology topology_truth switchover_plan failover_plan; do \
	  ANSIBLE_COLLECTIONS_PATH=$(INSTALLED) $(BIN)/ansible-doc -t filter hotstandby.postgresql.$$doc >/dev/null; done
	for playbook in site status switchover failover; do \
	  ANSIBLE_COLLECTIONS_PATH=$(INSTALLED) $(BIN)/ansible-playbook --syntax-check \
	    -i inventory.example hotstandby.postgresql.$$playbook; done

# Every molecule scenario (SCENARIO=name, or several names, for some). `make
# molecule` tests the clone; `make test` tests the artifact `make build`
# installed.
SCENARIO ?=
define newline


endef
ALL_SCENARIOS := $(sort $(patsubst molecule/%/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))

# The queue of molecule runs, two at a time on two cores (make -j2 starts
# the next entry in this order whenever one ends): longest first, so that both
# cores stay busy to the end (the earlier three phases of fixed lanes left one
# core idle for minutes at each phase's end). A run is SUITE.SCENARIO; runs
# that must not overlap are one entry, one after another:
# - handover: the runs that time a hand-over never run beside each other (and
#   the two switchover runs share container names);
# - defaults: the default scenario on every suite (they share container
#   names and molecule's scenario directory).
# Measured in this queue, each beside another run (2026-12-03, fresh clone,
# 39 min in all; minutes): switchover 12, options 8.3, failover 8.1, faults
# 6.8, daytwo 5.2, cascade 5.0, switchover on bullseye 4.8, quorum_tls 4.3,
# inputs 4.0, default 2.9-3.7 per suite, module 2.2.
HANDOVER_RUNS := bookworm.switchover bookworm.failover $(SWITCHOVER_SUITE).switchover
DEFAULT_RUNS := bookworm.default $(addsuffix .default,$(MATRIX_SUITES))
MOLECULE_QUEUE := handover defaults bookworm.options bookworm.faults bookworm.daytwo \
  bookworm.quorum_tls bookworm.cascade bookworm.inputs bookworm.module
MOLECULE_ALL_RUNS := $(HANDOVER_RUNS) $(DEFAULT_RUNS) $(filter-out handover defaults,$(MOLECULE_QUEUE))
ifneq ($(sort $(patsubst bookworm.%,%,$(filter bookworm.%,$(MOLECULE_ALL_RUNS)))),$(ALL_SCENARIOS))
$(error MOLECULE_QUEUE in the Makefile must run every scenario of molecule/ once on bookworm: $(ALL_SCENARIOS))
endif
MOLECULE_RUNS := $(addprefix molecule-run.,$(MOLECULE_ALL_RUNS))
MOLECULE_ENTRIES := $(addprefix molecule-run.,$(MOLECULE_QUEUE))

# $(1): where hotstandby.postgresql is found, $(2): the suite, $(3): the
# scenarios, in order.
define run_molecule
	export HOTSTANDBY_COLLECTIONS_PATH=$(1); \
	eval "$$($(LAB) env $(2))"; \
	for scenario in $(3); do \
	  echo "molecule ($(2)): $$scenario, hotstandby.postgresql from $$HOTSTANDBY_COLLECTIONS_PATH"; \
	  start=$$SECONDS; \
	  $(BIN)/molecule test --scenario-name $$scenario || exit 1; \
	  echo "molecule ($(2)): $$scenario passed in $$((SECONDS - start)) s"; \
	done
endef

# One run of the queue: molecule-run.SUITE.SCENARIO, after its suite's images.
$(foreach suite,$(MATRIX_SUITES),$(eval $(filter molecule-run.$(suite).%,$(MOLECULE_RUNS)): lab-images.$(suite)))
$(MOLECULE_RUNS): molecule-run.%:
	$(call run_molecule,$(COLLECTIONS),$(firstword $(subst ., ,$*)),$(lastword $(subst ., ,$*)))

# The queue starts once the bookworm images, the trixie image (the faults
# scenario also starts a trixie standby) and, for make test, every check and
# the installed artifact are there (a failed check stops make test before any
# scenario): a run that waits on a prerequisite of its own inside the queue
# starts late, after the runs that need none (seen: faults, last).
.PHONY: $(MOLECULE_RUNS) molecule-run.handover molecule-run.defaults molecule-entries
molecule-queue: lab-images.bookworm lab-images.trixie $(MOLECULE_NEEDS)
	$(MAKE) --no-print-directory molecule-entries
molecule-entries: $(MOLECULE_ENTRIES)

# An entry of several runs: one sub-make per run, so that each run's output
# is printed when it ends.
molecule-run.handover:
	$(foreach run,$(HANDOVER_RUNS),$(MAKE) --no-print-directory molecule-run.$(run) COLLECTIONS=$(COLLECTIONS)$(newline))
molecule-run.defaults:
	$(foreach run,$(DEFAULT_RUNS),$(MAKE) --no-print-directory molecule-run.$(run) COLLECTIONS=$(COLLECTIONS)$(newline))

# Every scenario and the matrix, from COLLECTIONS (each run's output is
# printed when it ends).
molecule-all:
	$(MAKE) --no-print-directory -j2 --output-sync=target molecule-queue COLLECTIONS=$(COLLECTIONS)

molecule-run:
	$(call run_molecule,$(COLLECTIONS),$(SUITE),$(SCENARIO))

molecule: lab-images
ifneq ($(SCENARIO),)
	$(MAKE) --no-print-directory molecule-run COLLECTIONS=$(CURDIR)/playbooks/collections
else
	$(MAKE) --no-print-directory molecule-all COLLECTIONS=$(CURDIR)/playbooks/collections
endif

## --- benchmark ----------------------------------------------------------------

bench: lab
	$(CURDIR)/scripts/bench

clean:
	rm -rf $(BUILD) .pytest_cache
