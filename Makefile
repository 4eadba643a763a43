# catmaid.replication: one entry point for the lab and every test.
#   make demo        build the local container lab, deploy it with playbooks/site.yml, print status
#   make demo-clean  remove the lab
#   make test        everything CI runs: lint, sanity, unit, module integration, build, Molecule
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
BUILD := $(CURDIR)/build
COLL_LINK := $(BUILD)/collections/ansible_collections/catmaid/replication
SANITY_DIR := $(or $(TMPDIR),/tmp)/catmaid-replication-sanity/ansible_collections/catmaid/replication
# Longest first (seconds in a fresh 2-core run of 2026-11-30: faults 717, failover 617, archive 595,
# mixed 427, roles 424, pg17 278, default 272, pg13 272, adopt 248, catmaid 238; lifecycle 881 alone
# under load ~9 on 2026-11-30, placed after faults), so the short ones
# fill the gaps at the end and both job slots finish together; keep a new scenario in that order.
# catmaid_app (CATMAID's own application on catmaid-replication/catmaid:bullseye, issue 15) runs when
# CATMAID's source is at hand: CATMAID_SOURCE (tarball, directory or git URL; default GitHub), else skipped.
SCENARIOS ?= faults lifecycle catmaid_app failover archive mixed roles pg17 default pg13 adopt catmaid
# Releases whose images the scenarios run on: pg13 bullseye, default/catmaid/mixed bookworm
# (default/catmaid: $CATMAID_LAB_RELEASE when set), pg17/mixed trixie.
MOLECULE_RELEASES ?= bullseye bookworm trixie
MOLECULE_IMAGES = $(sort $(MOLECULE_RELEASES) $(CATMAID_LAB_RELEASE))
# faults, lifecycle, failover and archive run on catmaid-replication/debian-pg of this release (PostgreSQL
# preinstalled, images/debian-pg/Dockerfile), built with the others by the molecule and test targets.
molecule test: export PG_IMAGE_RELEASES = $(or $(CATMAID_LAB_RELEASE),bookworm)
# Scenarios run side by side, this many at once (each has its own containers and network).
MOLECULE_JOBS ?= 2

export ANSIBLE_COLLECTIONS_PATH := $(BUILD)/collections
export ANSIBLE_ROLES_PATH := $(CURDIR)/roles
export PATH := $(BIN):$(PATH)
export VIRTUAL_ENV := $(VENV)
export PY_COLORS := 0
export ANSIBLE_FORCE_COLOR := 0

.PHONY: help venv collection host-pg host-docker images lint sanity unit functional \
        build-check molecule test demo demo-clean freeze clean bench

help:
	@sed -n '2,5p' Makefile

$(BIN)/.installed: requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

venv: $(BIN)/.installed

# The checkout itself is the collection: expose it as ansible_collections/catmaid/replication.
collection: venv
	@mkdir -p $(dir $(COLL_LINK))
	@# Only when missing or wrong: `make test` runs two makes at once, and two ln -sfn can collide.
	@[ "$$(readlink $(COLL_LINK))" = "$(CURDIR)" ] || ln -sfn $(CURDIR) $(COLL_LINK)

host-pg:
	scripts/ensure-host.sh pg

host-docker:
	scripts/ensure-host.sh docker

# Local systemd Debian images (debootstrap + docker build, cached by Dockerfile hash).
# LAB_RELEASES (default: $CATMAID_LAB_RELEASE, the release Molecule runs, else bookworm),
# e.g. make images LAB_RELEASES="bullseye bookworm trixie"; make molecule CATMAID_LAB_RELEASE=trixie.
images: host-docker
	scripts/build-images.sh $(or $(LAB_RELEASES),$(CATMAID_LAB_RELEASE),bookworm)

lint: collection
	ansible-lint --offline

# ansible-test needs a real directory named ansible_collections/catmaid/replication outside
# any other git checkout (it lists files through git), so sanity runs on a copy in $TMPDIR.
# Its pip bootstrap script comes from a CDN we cannot reach: scripts/ansible_test_get_pip.py
# stands in for it (ensurepip, then PyPI).
sanity: collection
	scripts/ensure-host.sh sanity
	@pipver=$$(sed -n "s/^ *pip='\([0-9.]*\)',/\1/p" $(VENV)/lib/python3.*/site-packages/ansible_test/_internal/python_requirements.py | head -1); \
	  cache=$$HOME/.ansible/test/cache/get_pip_$${pipver//./_}.py; \
	  mkdir -p $$(dirname $$cache); install -m 0644 scripts/ansible_test_get_pip.py $$cache
	rm -rf $(SANITY_DIR) && mkdir -p $(SANITY_DIR)
	git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - | tar -xf - -C $(SANITY_DIR)
	cd $(SANITY_DIR) && ansible-test sanity --venv --python 3.11 --color no
	@# Managed hosts may run Python 3.9 (Debian 11): compile and import the plugins there too.
	PATH="$$(ls -d $$HOME/.pyenv/versions/3.9*/bin 2>/dev/null | tail -1):$$PATH"; \
	if python3.9 -V >/dev/null 2>&1; then \
	  cd $(SANITY_DIR) && ansible-test sanity --venv --python 3.9 --test compile --test import --color no; \
	else echo "python3.9 not found: skipping the 3.9 compile/import checks" >&2; fi

unit: collection
	pytest -q tests/unit

functional: collection host-pg
	pytest -q tests/functional

# The built tarball installs into an empty collections path and every module's doc renders.
build-check: collection
	scripts/build-check.sh

molecule: collection host-docker
	scripts/build-images.sh $(MOLECULE_IMAGES)
	@# catmaid_app needs CATMAID's image (scripts/catmaid-app-image.sh: kept when up to date); without
	@# CATMAID's source it is left out, and said so loudly here and again at the end.
	@scen=" $(SCENARIOS) "; skipped=; \
	  if [[ "$$scen" == *" catmaid_app "* ]]; then \
	    scripts/catmaid-app-image.sh; \
	    if [ -f $(BUILD)/logs/catmaid_app.skipped ]; then skipped=1; scen=$${scen/ catmaid_app / }; fi; \
	  else rm -f $(BUILD)/logs/catmaid_app.skipped; fi; \
	  rc=0; [ -z "$${scen// /}" ] || JOBS=$(MOLECULE_JOBS) scripts/run-scenarios.sh $$scen || rc=$$?; \
	  [ -z "$$skipped" ] || cat $(BUILD)/logs/catmaid_app.skipped >&2; \
	  exit $$rc

# The host's packages first (apt, one at a time). Then two jobs start in the background, each with
# its log in build/logs: the Molecule images (debootstrap + docker build, minutes on a fresh
# machine; they need no venv, so they start before it is made) and the module tests (one pytest,
# about one core of two for ~7 min). Meanwhile lint, sanity, unit and build-check run here, then
# Molecule (after the images; its own call of build-images.sh finds them up to date) beside what
# is left of the module tests. A failed check stops both background jobs; a failed image build
# stops the run before Molecule, and so do failed module tests when they are over by then;
# otherwise their output and result follow Molecule's, and `make test` fails when either failed.
# Through a variable: a recipe line that names MAKE itself would run even under `make -n`.
SUBMAKE = $(MAKE) --no-print-directory
# The module tests are stopped with SIGINT: pytest then tears its fixtures down, which stops the
# PostgreSQL servers it started (they run in sessions of their own, out of reach of a kill). A job
# started with & ignores SIGINT, so it starts with the default action for it again.
DEFAULT_SIGINT := $(shell env --default-signal=INT true 2>/dev/null && echo env --default-signal=INT)
test:
	scripts/ensure-host.sh docker pg sanity
	@mkdir -p $(BUILD)/logs
	@trap 'exit 130' INT TERM; t0=$$(date +%s); \
	  setsid bash -c 'scripts/build-images.sh $(MOLECULE_IMAGES) && { [[ " $(SCENARIOS) " != *" catmaid_app "* ]] || \
	      { for _ in $$(seq 900); do [ -f $(BIN)/.installed ] && break; sleep 1; done; scripts/catmaid-app-image.sh; }; }' \
	    >$(BUILD)/logs/images.log 2>&1 & img=$$!; \
	  trap 'kill -TERM -- -'"$$img"' 2>/dev/null || true' EXIT; \
	  $(SUBMAKE) collection; \
	  rm -f $(BUILD)/logs/functional.rc; \
	  setsid $(DEFAULT_SIGINT) bash -c '$(SUBMAKE) functional >$(BUILD)/logs/functional.log 2>&1; echo $$? >$(BUILD)/logs/functional.rc' & fun=$$!; \
	  trap 'kill -TERM -- -'"$$img"' 2>/dev/null || true; kill -INT -- -'"$$fun"' 2>/dev/null || true' EXIT; \
	  echo "test: in the background: images ($(MOLECULE_IMAGES), build/logs/images.log), functional (build/logs/functional.log)"; \
	  $(SUBMAKE) lint sanity unit build-check; \
	  echo "test: checks done after $$(( $$(date +%s) - t0 )) s; waiting for the images"; \
	  rc=0; wait $$img || rc=$$?; cat $(BUILD)/logs/images.log; \
	  if [ $$rc -ne 0 ]; then echo "test: the image build FAILED (rc $$rc), its log is above" >&2; exit 1; fi; \
	  fun_rc=; functional_result() { \
	    wait $$fun || true; fun_rc=$$(cat $(BUILD)/logs/functional.rc 2>/dev/null || echo 1); \
	    echo "== functional (module tests, in the background): rc $$fun_rc, over after $$(( $$(date +%s) - t0 )) s at the latest"; \
	    cat $(BUILD)/logs/functional.log; }; \
	  [ ! -s $(BUILD)/logs/functional.rc ] || functional_result; \
	  if [ -n "$$fun_rc" ] && [ "$$fun_rc" -ne 0 ]; then echo "test: functional FAILED, Molecule not started" >&2; exit 1; fi; \
	  echo "test: Molecule starts after $$(( $$(date +%s) - t0 )) s"; \
	  mol_rc=0; $(SUBMAKE) molecule || mol_rc=$$?; \
	  [ -n "$$fun_rc" ] || functional_result; trap - EXIT; \
	  echo "test: done after $$(( $$(date +%s) - t0 )) s: molecule rc $$mol_rc, functional rc $$fun_rc"; \
	  [ ! -f $(BUILD)/logs/catmaid_app.skipped ] || cat $(BUILD)/logs/catmaid_app.skipped >&2; \
	  [ $$mol_rc -eq 0 ] && [ $$fun_rc -eq 0 ]

# Benchmarks (issue 8) on throw-away bn-* containers (network catmaid-bench), never part of `test`:
# results, tables and plots in bench/results/ (README.md there). About 30-40 min on 2 cores.
# BENCH_ARGS passes options, e.g. make bench BENCH_ARGS="--quick --out build/bench/quick".
bench: collection images
	python bench/bench.py $(BENCH_ARGS)

# Switchover and failover drill (issue 16 item 2) on throw-away dr-* containers (network
# catmaid-drill) under a write probe: bench/results/drill.md and drill.json. 20-60 min on 2 cores, by load.
# DRILL_ARGS passes options, e.g. make drill DRILL_ARGS="--rounds 1 --keep".
.PHONY: drill
drill: collection images
	python bench/drill.py $(DRILL_ARGS)

# CATMAID's own application (issue 15) as the image catmaid-replication/catmaid:bullseye on top of the
# bullseye lab image, cached by the hash of its inputs (images/catmaid/Dockerfile, the lock, the source).
# CATMAID_SOURCE: a tarball, a directory or a git URL (default: GitHub at CATMAID_COMMIT, 7d9f836...),
# e.g. make catmaid-image CATMAID_SOURCE=/path/to/CATMAID-7d9f83618.tar.gz. No container is started;
# scripts/smoke-catmaid-image.sh runs images/catmaid/smoke.sh in a throw-away catmaid-img-smoke.
.PHONY: catmaid-image
catmaid-image: host-docker
	scripts/build-images.sh bullseye
	$(if $(CATMAID_SOURCE),CATMAID_SOURCE='$(CATMAID_SOURCE)') $(if $(CATMAID_COMMIT),CATMAID_COMMIT='$(CATMAID_COMMIT)') \
	  scripts/build-catmaid-image.sh

# Issue 15's browser check, not in `make test` (10 to 15 minutes; docs/notes/catmaid-browser.md): on the lab of the
# Molecule scenario catmaid_app (molecule create + converge: cma-primary, cma-replica, network catmaid-app-lab), a
# headless Chromium (Debian's, driven by selenium from build/browser-venv) opens the main instance's tracing view
# with read_only_mirror_index set, and the replica's nginx log must show the node-list requests (plus a control
# without); molecule destroy at the end. Needs `collection`, `host-docker` and the image of `make catmaid-image`.
# It runs that scenario's lab: never while `make test` or `make molecule` runs catmaid_app (it refuses to start
# when cma-* containers exist). KEEP=1 keeps the lab; REUSE=1 uses a kept one (no create, no converge).
.PHONY: catmaid-browser
catmaid-browser: collection host-docker
	scripts/catmaid-browser-check.sh

# Fresh machine to running lab: venv, docker engine, images, then `molecule converge` (creates the
# containers and network if missing, writes this lab's random password to build/lab, deploys
# playbooks/site.yml). Rerunning converges the existing lab again.
demo: collection images
	molecule converge -s default
	ANSIBLE_CALLBACK_RESULT_FORMAT=yaml ansible-playbook -i localhost, molecule/default/status.yml

demo-clean: collection
	molecule destroy -s default
	rm -f $(BUILD)/lab/replication_password

freeze: venv
	{ echo "# Pinned test/controller environment; regenerate with: make freeze"; $(BIN)/pip freeze; } > requirements.txt

clean:
	rm -rf $(BUILD)
