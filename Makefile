# The two commands a new user runs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -q -c requirements.lock
# Debian packages the tests drive as real peers: a PACS, the DICOM toolkit, a browser.
TEST_APT := orthanc orthanc-dicomweb dcmtk chromium fonts-liberation
TEST_CMDS := /usr/sbin/Orthanc /usr/bin/storescu /usr/bin/chromium

.PHONY: run test deps test-deps system-deps migrate clean

run: deps
	$(BIN)/hoichan migrate
	$(BIN)/hoichan seed-demo
	$(BIN)/hoichan serve

test: test-deps system-deps
	$(BIN)/pytest -q

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
	@missing=0; for c in $(TEST_CMDS); do [ -x $$c ] || missing=1; done; \
	if [ $$missing = 1 ]; then \
		echo "installing $(TEST_APT) with apt-get"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(TEST_APT); \
	fi

migrate: deps
	$(BIN)/hoichan migrate

clean:
	rm -rf $(VENV) var
