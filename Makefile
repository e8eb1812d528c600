# Stockade: `make run` installs everything and starts the platform; `make test` installs
# everything and runs the whole suite. Both work on a fresh Debian machine with Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system-deps run test check bench reliability cluster cluster-stop clean

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

# Scale-out on loopback: PostgreSQL, NATS JetStream, two controllers (3233, 3234), two invokers.
cluster: install
	./scripts/cluster start

cluster-stop:
	./scripts/cluster stop

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
