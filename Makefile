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

.PHONY: help demo demo-down test checks venv host-deps lab lab-images unit lint sanity build molecule molecule-artifact molecule-all molecule-lane-a molecule-lane-b molecule-lane-c molecule-lane-d molecule-run bench clean

help:
	@echo "make demo       build a primary and a hot standby in local containers and show them replicating"
	@echo "make demo-down  remove the demo containers"
	@echo "make test       everything CI checks: unit, lint, sanity, build + offline install, molecule"
	@echo "make bench      time pair builds, re-runs and clones against hand-made lower bounds"

## --- set-up -----------------------------------------------------------------

host-deps:
	@$(CURDIR)/scripts/host-deps

$(BIN)/.installed: requirements.txt | host-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

venv: $(BIN)/.installed

lab: venv
	$(LAB) engine
	$(LAB) image $(SUITE) >/dev/null

# Every image the scenarios use, built (or found cached) once, before any
# scenario runs: the faults scenario also starts a trixie standby. Every
# bookworm scenario but default and inputs (which test the install from
# nothing, as the matrix does) starts from bookworm with PostgreSQL's
# packages preinstalled (`scripts/lab image-ready`): 25-40 s less each; so
# does the switchover on bullseye.
lab-images: lab
	for suite in $(sort bookworm $(MATRIX_SUITES)); do $(LAB) image $$suite >/dev/null; done
	$(LAB) image-ready bookworm >/dev/null
	$(LAB) image-ready $(SWITCHOVER_SUITE) >/dev/null

## --- demo -------------------------------------------------------------------

demo: lab
	$(CURDIR)/scripts/demo up $(DEMO_DIR) $(DEMO_PRIMARY) $(DEMO_STANDBY)

demo-down:
	$(CURDIR)/scripts/demo down $(DEMO_DIR) $(DEMO_PRIMARY) $(DEMO_STANDBY)

## --- test -------------------------------------------------------------------

# The lab images (debootstrap: network and disk) are built while the checks
# (CPU) run; --output-sync keeps each one's output together.
test: venv
	$(MAKE) --no-print-directory -j2 --output-sync=target checks lab-images
	$(MAKE) --no-print-directory molecule-artifact
	@echo "make test: all checks passed"

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
	for doc in pg_basebackup pg_basebackup_wait pg_rejoin pg_replication_info; do \
	  ANSIBLE_COLLECTIONS_PATH=$(INSTALLED) $(BIN)/ansible-doc hotstandby.postgresql.$$doc >/dev/null; done
	for doc in topology topology_truth switchover_plan failover_plan; do \
	  ANSIBLE_COLLECTIONS_PATH=$(INSTALLED) $(BIN)/ansible-doc -t filter hotstandby.postgresql.$$doc >/dev/null; done
	for playbook in site status switchover failover; do \
	  ANSIBLE_COLLECTIONS_PATH=$(INSTALLED) $(BIN)/ansible-playbook --syntax-check \
	    -i inventory.example hotstandby.postgresql.$$playbook; done

# Every molecule scenario (SCENARIO=name, or several names, for some). `make
# molecule` tests the clone; `make test` tests the artifact `make build`
# installed. Two cores, two lanes at a time, in two phases: first the
# scenarios that build, refuse and read (lanes A and B: measured 18.0 min for
# the seven of them against about 27 one after the other; each ran 1.2-1.45
# times longer), then those that time a hand-over (lane C) beside the version
# matrix's default runs and the faults (lane D), then the switchover on the
# matrix's oldest suite (it has the container names of lane C's switchover).
SCENARIO ?=
ALL_SCENARIOS := $(sort $(patsubst molecule/%/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))
LANE_A := cascade daytwo default inputs
LANE_B := module options quorum_tls
LANE_C := switchover failover
LANE_D := faults
ifneq ($(sort $(LANE_A) $(LANE_B) $(LANE_C) $(LANE_D)),$(ALL_SCENARIOS))
$(error LANE_A to LANE_D in the Makefile must name every scenario of molecule/ once: $(ALL_SCENARIOS))
endif

# $(1): where hotstandby.postgresql is found, $(2): the scenarios, in order.
define run_molecule
	export HOTSTANDBY_COLLECTIONS_PATH=$(1); \
	eval "$$($(LAB) env $(SUITE))"; \
	echo "molecule ($(SUITE)): $(2), hotstandby.postgresql from $$HOTSTANDBY_COLLECTIONS_PATH"; \
	for scenario in $(2); do $(BIN)/molecule test --scenario-name $$scenario || exit 1; done
endef

# The version matrix: the default scenario once more on every other suite
# (Debian 11 / PostgreSQL 13, 13 / 17, sid / 18; bookworm / 15 ran above),
# and the switchover on the oldest supported version too (from its image
# with the packages preinstalled: the default runs test the install there).
MATRIX_SUITES := bullseye trixie sid
SWITCHOVER_SUITE := bullseye

# Every scenario and the matrix, from COLLECTIONS, lane by lane (each lane's
# output is printed when it ends).
molecule-all:
	$(MAKE) --no-print-directory -j2 --output-sync=target molecule-lane-a molecule-lane-b
	$(MAKE) --no-print-directory -j2 --output-sync=target molecule-lane-c molecule-lane-d
	$(MAKE) --no-print-directory molecule-run SUITE=$(SWITCHOVER_SUITE) SCENARIO=switchover COLLECTIONS=$(COLLECTIONS)

molecule-lane-a:
	$(call run_molecule,$(COLLECTIONS),$(LANE_A))

molecule-lane-b:
	$(call run_molecule,$(COLLECTIONS),$(LANE_B))

molecule-lane-c:
	$(call run_molecule,$(COLLECTIONS),$(LANE_C))

molecule-lane-d:
	set -e; for suite in $(MATRIX_SUITES); do \
	  $(MAKE) --no-print-directory molecule-run SUITE=$$suite SCENARIO=default COLLECTIONS=$(COLLECTIONS); \
	done
	$(call run_molecule,$(COLLECTIONS),$(LANE_D))

molecule-run:
	$(call run_molecule,$(COLLECTIONS),$(SCENARIO))

molecule: lab-images
ifneq ($(SCENARIO),)
	$(MAKE) --no-print-directory molecule-run COLLECTIONS=$(CURDIR)/playbooks/collections
else
	$(MAKE) --no-print-directory molecule-all COLLECTIONS=$(CURDIR)/playbooks/collections
endif

molecule-artifact: build lab-images
	$(MAKE) --no-print-directory molecule-all COLLECTIONS=$(INSTALLED)

## --- benchmark ----------------------------------------------------------------

bench: lab
	$(CURDIR)/scripts/bench

clean:
	rm -rf $(BUILD) .pytest_cache
