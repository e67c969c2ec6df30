# uv manages the environment; bootstrap it with pip when the machine does not have it.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: help bootstrap sync test pytest lint local bench

help:
	@echo "make test   - lint + the whole test suite (installs what it needs)"
	@echo "make local  - local API Gateway + Lambda emulator with a demo upstream; curl -N the printed URL"
	@echo "make lint   - ruff, hadolint, workflow schema, zizmor"
	@echo "make bench  - the runtime benchmark (prints figures)"

bootstrap:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
		python3 -m pip install --quiet uv || python3 -m pip install --quiet --user --break-system-packages uv

sync: bootstrap
	$(UV) sync --frozen

test: sync lint pytest

pytest: sync
	$(UV) run --frozen pytest

lint: sync
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

local: sync
	$(UV) run --frozen python -m emulator

bench: sync
	$(UV) run --frozen python bench/bench_runtime.py
