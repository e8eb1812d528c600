# Stockade: `make run` installs everything and starts the platform; `make test` installs
# everything and runs the whole suite. Both work on a fresh Debian machine with Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system-deps run test check bench reliability fuzz cluster cluster-stop clean

$(STAMP): pyproject.toml requirements.lock scripts/install
	./scripts/install
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/stockade up

test: install
	./scripts/test

check: install
	./scripts/check

bench: install
	./scripts/bench

# Faults against a real server on loopback (kill -9, full disk, bursts, limits); one line per figure.
reliability: install
	./scripts/reliability

# Property-based fuzzing of every OpenAPI operation against a live server (make test runs a few
# examples per operation; this runs FUZZ_EXAMPLES each). Counts in var/fuzz/report.json.
FUZZ_EXAMPLES ?= 500
fuzz: install
	STOCKADE_TEST_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q --timeout 3600 tests/edge/test_fuzz_openapi.py
	cat var/fuzz/report.json

# Scale-out on loopback: PostgreSQL, NATS JetStream, two controllers (3233, 3234), two invokers.
cluster: install
	./scripts/cluster start

cluster-stop:
	./scripts/cluster stop

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
