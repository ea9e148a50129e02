# Two commands on a fresh clone: `make test` and `make emulate`.
# The first use creates .venv from the pinned requirements.txt.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.txt | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: all test emulate check-long build lint bench clean device check-device

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

# The 32-bit unix interpreter and the QEMU Cortex-M3 firmware, built from the pinned MicroPython
# source with the app frozen in (cached on their inputs), and the suite on the 32-bit one under
# an ESP32's heap, QEMU checks included (docs/device-figures.md). Needs gcc-multilib,
# gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm (.ci/run installs them).
device: build
	$(BIN)/python flash.py micropython unix32 qemu

check-device: device
	READER_INTERPRETER=unix32 $(BIN)/python -m pytest host_tests $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf build .pytest_cache
