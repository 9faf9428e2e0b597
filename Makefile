# Rempart: every entry point of the project. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV ?= .venv
PYTHON ?= python3
REQS_HASH := $(shell sha256sum requirements.txt | cut -c1-12)
VENV_STAMP := $(VENV)/.installed-$(REQS_HASH)
export PATH := $(abspath $(VENV))/bin:$(PATH)
export ANSIBLE_CONFIG := $(abspath ansible.cfg)
export PY_COLORS := 1
export ANSIBLE_FORCE_COLOR := 1
export NO_MKDOCS_2_WARNING := 1

# Roles that have a molecule scenario, in name order.
MOLECULE_ROLES := $(sort $(patsubst roles/%/molecule/default/molecule.yml,%,$(wildcard roles/*/molecule/default/molecule.yml)))
LAB_INVENTORY := inventories/lab

.PHONY: help venv tools engine image lint yamllint ansible-lint pytest docs docs-build docs-check docs-serve \
        molecule molecule-all test lab-image lab lab-test drift drill lab-down clean requirements audit audit-lab bench

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The one place that puts the repository on Python's path: the virtualenv's site-packages learn it,
# so that Ansible's plugins, the tools and the tests all import the same `rempart` package.
REMPART_PTH := $(VENV)/.rempart-path-$(shell echo $(CURDIR) | sha256sum | cut -c1-12)
$(REMPART_PTH): $(VENV_STAMP)
	@$(VENV)/bin/python -c 'import site, sys; open(site.getsitepackages()[0] + "/rempart-repo.pth", "w").write(sys.argv[1] + "\n")' "$(CURDIR)"
	@rm -f $(VENV)/.rempart-path-* && touch $@

venv: $(VENV_STAMP) $(REMPART_PTH) ## Create the virtualenv with the pinned tools (requirements.txt)
$(VENV_STAMP): requirements.txt
	@echo "venv: installing pinned tools into $(VENV)"
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { test "$$(id -u)" = 0 && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; } || \
	  { echo "venv: $(PYTHON) cannot create virtualenvs: install python3-venv"; exit 1; }
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-* && touch $@

engine: ## Make sure a Docker engine answers (installs Debian's docker.io if root on Debian)
	@$(PYTHON) -m rempart engine

image: engine ## Build the lab base image rempart/debian:12 when its recipe changed; start the apt cache
	@$(PYTHON) -m rempart image
	@$(PYTHON) -m rempart aptcache

yamllint: venv
	@yamllint --strict .

ansible-lint: venv
	@ansible-lint --profile production

lint: yamllint ansible-lint ## yamllint and ansible-lint (production profile)

tools: ## The controller's own tools (SSH client, tcpdump, nft), installed when missing
	@$(PYTHON) -m rempart engine --tools

pytest: venv tools ## Unit tests of the project's Python tooling (tests/)
	@python -m pytest -q -n auto --dist loadfile tests/tools

audit: venv image ## Score the hardening baseline (Lynis, ssh-audit, second run) into docs/results/hardening.json, then make docs
	@python -m rempart audit
	@$(MAKE) --no-print-directory docs

audit-lab: venv ## Lynis on every host of the running lab (make lab first) into docs/results/hardening.json, then make docs
	@python -m rempart audit --lab
	@$(MAKE) --no-print-directory docs

bench: venv image ## Time the baseline's second run over SSH, a second `make lab` with its profile (per phase, role, task), and the WAF (docs/results/waf-bench.json)
	@python -m rempart audit --out $(CURDIR)/.bench-hardening.json
	@python -c "import json; r = json.load(open('.bench-hardening.json'))['run']; print(json.dumps(r, indent=2))"
	@log=$$(mktemp); $(MAKE) lab >$$log 2>&1 || { tail -40 $$log; rm -f $$log; exit 1; }; rm -f $$log
	@start=$$(date +%s); \
	  ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks,ansible.posix.profile_roles PROFILE_TASKS_TASK_OUTPUT_LIMIT=15 \
	  $(MAKE) lab | sed 's/\x1b\[[0-9;]*m//g' | grep -E ' -{2,} +[0-9.]+s$$|^lab: |changed=[1-9]' ; \
	  echo "bench: second make lab took $$(( $$(date +%s) - start )) s"
	@python -m rempart bench --record
	@$(MAKE) --no-print-directory docs

docs: venv ## Regenerate the generated pages and build the site into site/
	@python -m rempart docs
	@mkdocs build --strict --quiet

docs-build: venv
	@mkdocs build --strict --quiet

docs-check: docs-build ## Fail when a generated page is stale, a role variable undocumented, or the site not offline or not of this commit
	@python -m rempart docs --check $$(test -d site && echo --site site)

docs-serve: docs ## Serve the docs on http://127.0.0.1:8000/
	@mkdocs serve --dev-addr 127.0.0.1:8000

molecule: venv image ## Run one role's molecule scenario: make molecule ROLE=common
	@test -n "$(ROLE)" || { echo "usage: make molecule ROLE=<role>  (roles: $(MOLECULE_ROLES))"; exit 2; }
	@test -f roles/$(ROLE)/molecule/default/molecule.yml || { echo "role '$(ROLE)' has no molecule scenario (roles: $(MOLECULE_ROLES))"; exit 2; }
	@cd roles/$(ROLE) && molecule test

molecule-all: venv image ## Run every molecule scenario, two (or MOLECULE_JOBS) at a time, the heaviest first; outputs in build/test-logs/
	@python -m rempart molecule $(if $(MOLECULE_JOBS),--jobs $(MOLECULE_JOBS))

# Each step's output is kept there; when a step fails, its lines that say what failed (pytest's and testinfra's
# FAILED/ERROR lines and assertion lines, Ansible's fatal ones, a linter's errors) are printed again before the
# timing table, so that the end of a long log (which CI shows) names the failure.
TEST_LOGS := build/test-logs
TEST_FAILURES := (FAILED|ERROR) [^ ]+::|^ *[│|]? *E  |fatal: \\[|FAILED!|failed=[1-9]|[Ee]rror:|^[^ ]+:[0-9]+:[0-9]+: |make test: .*FAILED
TEST_STEPS := yamllint ansible-lint pytest docs-build docs-check molecule-all lab-test drift

test: ## Every check CI runs, fail-fast: lint, pytest, docs, molecule, the lab, its tests and drift; a timing table at the end
	@table=""; total=0; status=0; mkdir -p $(TEST_LOGS); \
	for step in $(TEST_STEPS); do \
	  printf '\n\033[1m---------- make %s ----------\033[0m\n' "$$step"; \
	  start=$$(date +%s); \
	  if $(MAKE) $$step 2>&1 | tee $(TEST_LOGS)/$$step.log; then result=passed; else result=FAILED; status=1; fi; \
	  took=$$(( $$(date +%s) - start )); total=$$(( total + took )); \
	  echo "make test: '$$step' $$result in $$took s"; \
	  table="$$table$$(printf '%-14s %-7s %6d s' "$$step" "$$result" "$$took")\n"; \
	  test $$status = 0 || break; \
	done; \
	if [ $$status != 0 ]; then \
	  printf '\n\033[1m---------- make test: what failed in %s (whole output: %s) ----------\033[0m\n' "$$step" "$(TEST_LOGS)/$$step.log"; \
	  sed 's/\x1b\[[0-9;]*m//g' $(TEST_LOGS)/$$step.log | { grep -a -E "$(TEST_FAILURES)" || true; } | tail -n 30; \
	fi; \
	printf '\n\033[1m---------- make test: time of each step ----------\033[0m\n'; \
	printf "$$table"; printf '%-14s %-7s %6d s\n' total "$$( test $$status = 0 && echo passed || echo FAILED )" "$$total"; \
	exit $$status

lab-image: venv image ## Build the lab hosts' image (the base image with the packages of the roles every host gets) when it changed
	@python -m rempart labimage

lab: lab-image ## Bring the reference stack up on the local container engine
	@for phase in lab/up bootstrap site; do \
	  start=$$(date +%s); \
	  ansible-playbook -i $(LAB_INVENTORY) playbooks/$$phase.yml -e rempart_target=lab || exit 1; \
	  echo "lab: playbooks/$$phase.yml took $$(( $$(date +%s) - start )) s"; \
	done
	@printf '\n\033[1mThe lab is up.\033[0m Next:\n'
	@printf '  ssh -F .lab/ssh_config bastion1     (or any host: %s)\n' "$$(ansible -i $(LAB_INVENTORY) all --list-hosts 2>/dev/null | tail -n +2 | xargs)"
	@printf '  .lab/endpoints.json                 addresses, URLs and the lab CA of this lab\n'
	@printf '  make lab-test | make drift          the lab tests | what differs from the code\n'
	@printf '  make docs-serve                     the docs, on http://127.0.0.1:8000/\n'

lab-test: lab ## Bring the lab up, then run the tests against it (tests/lab)
	@python -m pytest -q -p no:cacheprovider --durations=20 tests/lab

drift: venv ## Fail when an environment differs from the code: site.yml --check --diff (ENV=lab; ARGS for more options)
	@python -m rempart drift $(or $(ENV),lab) $(ARGS)

drill: venv ## Run the drills on the running lab (DRILL=failover|switchover|standby|partition, all by default; REPEAT=n) and record their figures
	@python -m rempart drill --record --repeat $(or $(REPEAT),1) $(DRILL)
	@$(MAKE) --no-print-directory docs

lab-down: venv ## Remove exactly what the lab created (containers, networks, .lab/)
	@ansible-playbook -i $(LAB_INVENTORY) playbooks/lab/down.yml

clean: ## Remove the virtualenv, the built site and caches (not the lab: see lab-down)
	@rm -rf $(VENV) site .pytest_cache
	@find . -name __pycache__ -type d -prune -exec rm -rf {} +

requirements: ## Re-pin requirements.txt from requirements.in in a throwaway venv
	@tmp=$$(mktemp -d) && $(PYTHON) -m venv $$tmp && \
	  $$tmp/bin/pip install --quiet --disable-pip-version-check -r requirements.in && \
	  { echo "# Generated from requirements.in by \`make requirements\` (pip freeze of a fresh venv). Do not edit."; \
	    $$tmp/bin/pip freeze --exclude-editable; } > requirements.txt && rm -rf $$tmp
