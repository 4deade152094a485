# Gavel: the two commands of the quick start are `make run` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint bench clean browser

install: $(STAMP)

# Re-install only when the project metadata changes; idempotent otherwise.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: install
	$(BIN)/gavel run $(ARGS)

test: install browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Headless Chromium for the browser tests (tests/browser): Debian's package, driven by Playwright
# with executable_path. Installed with apt-get only when missing (sudo when not root); a no-op after.
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  echo "installing chromium with apt-get (tests/browser needs it)"; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    chromium fonts-dejavu-core; }
	@test -x $(CHROMIUM) || { echo "$(CHROMIUM) is still missing after apt-get" >&2; exit 1; }

lint: install
	$(BIN)/ruff check exchange ssp dsp gavel bench tests
	$(BIN)/ruff format --check exchange ssp dsp gavel bench tests
	$(BIN)/mypy exchange ssp dsp gavel

bench: install
	$(BIN)/python -m bench.auction_bench $(ARGS)

# The Locust load test (docs/loadtest.md): starts a world, runs Locust headless, exits 1 when a
# threshold is missed. `make loadtest ARGS="--profile configs/load/ramp.toml"` picks a profile.
.PHONY: loadtest
loadtest: install
	$(BIN)/python -m bench.load $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
