# The two commands a new user runs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -q -c requirements.lock
# Debian packages the tests drive as real peers: a PACS, the DICOM toolkit, a browser, and
# the deploy/ servers (a TURN server, the reverse proxy), a syslog collector taking TLS.
TEST_APT := orthanc orthanc-dicomweb dcmtk chromium fonts-liberation coturn nginx \
	rsyslog rsyslog-gnutls
TEST_CMDS := /usr/sbin/Orthanc /usr/bin/storescu /usr/bin/chromium /usr/bin/turnserver \
	/usr/sbin/nginx /usr/sbin/rsyslogd /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so

# The browser app (TypeScript, Vite): installed exactly from package-lock.json, rebuilt into
# frontend/dist only when a source or the lockfile changed. Needs npm and a Node.js of
# frontend/package.json's "engines" (README, "The two commands", says why those).
NODE ?= node
NPM ?= npm
NODE_ENGINES := $(shell sed -n 's/^ *"node": *"\([^"]*\)".*/\1/p' frontend/package.json)
FRONTEND_SRC := $(shell find frontend/src -type f 2>/dev/null) \
	frontend/index.html frontend/vite.config.ts frontend/tsconfig.json frontend/package.json

.PHONY: run test lint deps test-deps system-deps node-version frontend frontend-deps frontend-test \
	wire-types migrate clean

# Node.js first: a missing or old one is said in one line before anything is installed.
run: node-version deps frontend
	$(BIN)/hoichan migrate
	$(BIN)/hoichan seed-demo
	$(BIN)/hoichan serve

# Lint and types first: a finding fails the run before the 15-minute suite starts.
test: test-deps system-deps lint frontend frontend-test
	$(BIN)/pytest -q

# ruff and mypy --strict as configured in pyproject.toml; the TypeScript is type-checked by
# the frontend build (tsc --noEmit).
lint: test-deps
	$(BIN)/ruff check .
	$(BIN)/mypy

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q --upgrade pip

$(VENV)/.deps: pyproject.toml requirements.lock | $(BIN)/python
	$(PIP) -e .
	touch $@

$(VENV)/.test-deps: $(VENV)/.deps
	$(PIP) -e '.[test]'
	touch $@

deps: $(VENV)/.deps
test-deps: $(VENV)/.test-deps

system-deps:
	@missing=0; for c in $(TEST_CMDS); do [ -e $$c ] || missing=1; done; \
	if [ $$missing = 1 ]; then \
		echo "installing $(TEST_APT) with apt-get"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(TEST_APT); \
	fi

node-version:
	@for c in $(NODE) $(NPM); do command -v $$c >/dev/null || { echo "building frontend/ \
	needs Node.js $(NODE_ENGINES) with npm, and $$c is not on PATH: install Node.js 22 or 24 \
	LTS" >&2; exit 1; }; done
	@cd frontend && $(NODE) check-node.cjs

frontend/node_modules/.installed: frontend/package.json frontend/package-lock.json | node-version
	cd frontend && $(NPM) ci --prefer-offline --no-audit --no-fund
	touch $@

frontend/dist/index.html: frontend/node_modules/.installed $(FRONTEND_SRC)
	cd frontend && $(NPM) run build
	touch $@

frontend-deps: frontend/node_modules/.installed
frontend: frontend/dist/index.html

frontend-test: frontend-deps
	cd frontend && $(NPM) test

# The browser's room protocol types (frontend/src/wire/protocol.ts) from the pydantic models of
# signaling/schemas.py, after changing one; tests/signaling/test_wire_types.py fails until then.
wire-types: deps frontend-deps
	PYTHONPATH=$(CURDIR) $(BIN)/python -m signaling.wire_types

migrate: deps
	$(BIN)/hoichan migrate

clean:
	rm -rf $(VENV) var frontend/node_modules frontend/dist
