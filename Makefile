# Two commands on a fresh clone: `make test` and `make emulate`.
# The first use creates .venv from the pinned requirements.txt.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.txt | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: all test emulate check-long build lint bench clean

all: test

$(STAMP): requirements.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

build: $(STAMP)
	$(BIN)/python flash.py build --board host

test: build
	$(BIN)/ruff check .
	$(BIN)/python -m pytest host_tests $(PYTEST_ARGS)

check-long: build
	READER_LONG=1 $(BIN)/python -m pytest host_tests $(PYTEST_ARGS)

emulate: build
	$(BIN)/python flash.py emulate

bench: build
	$(BIN)/python flash.py bench all

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf build .pytest_cache
