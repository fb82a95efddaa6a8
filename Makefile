# meshward build/test entry points. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Filters built to dist/. Crate `foo` -> dist/foo.wasm; a `-filter` suffix is dropped
# (noop-filter -> dist/noop.wasm). Adding a filter is one word here.
FILTERS ?= jwt-auth authz rate-limit anomaly noop-filter
WASM_TARGET := wasm32-wasip1
CARGO ?= cargo
VENV := .venv
PYTEST_ARGS ?=
MODE ?=

export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: help deps lint fmt-check clippy unit build integration test run bench clean fuzz fuzz-smoke soak image release

help:
	@echo "make deps         install toolchain target, apt packages, .venv, npm deps (idempotent)"
	@echo "make lint         cargo fmt --check + clippy (native and $(WASM_TARGET)), -D warnings"
	@echo "make unit         cargo test --workspace"
	@echo "make build        build $(FILTERS) and the suite for $(WASM_TARGET) into dist/, plus dist/ratelimit-service and dist/meshward (the CLI)"
	@echo "make integration  deps + build + pytest integration-tests/ (real Envoy, real OIDC provider), then again against the suite module"
	@echo "make test         everything CI runs: deps lint unit build, bench smoke, integration"
	@echo "make run          demo: echo upstream + Envoy on :10000 (admin :9901): the suite, jwt-auth -> authz -> rate-limit in one module (MODULES=standalone: three modules; RATE_LIMIT_MODE=global starts Redis + the RLS)"
	@echo "make bench        bench/run.sh \"\$$(MODE)\""
	@echo "make soak         10 min of mixed traffic through the chain; report + RSS plot in bench/results/ (SOAK_SECONDS, SOAK_RATE)"
	@echo "make fuzz-smoke   every fuzz target over its corpus + bounded mutants (FUZZ_SMOKE_ITERS, default 20000)"
	@echo "make fuzz         cargo fuzz, each target FUZZ_SECONDS (default 60), one at a time (FUZZ_TARGETS to pick)"
	@echo "make image        build + one Istio compat Wasm OCI image layout per module in dist/images/<module>/, plus the rate-limit service's container image (no Docker), printing digests"
	@echo "make release      build + dist/release/<version>/: versioned .wasm, SHA256SUMS, images, pinned Istio manifests (REGISTRY=ghcr.io)"
	@echo "make clean        remove target/ dist/ .run/"

deps:
	@bash scripts/ensure-deps.sh

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --workspace --exclude ratelimit-service --exclude wasm-trim --exclude meshward-cli --exclude meshward-fuzz --target $(WASM_TARGET) -- -D warnings

lint: deps fmt-check clippy

unit:
	$(CARGO) test --workspace

build:
	@if ! rustup target list --installed 2>/dev/null | grep -qx $(WASM_TARGET); then rustup target add $(WASM_TARGET); fi
	$(CARGO) build --release --target $(WASM_TARGET) $(addprefix -p ,$(FILTERS))
	@# The suite links the filter crates with `embedded` (no entry point of their own):
	@# a separate cargo run, so that feature never reaches the standalone modules.
	$(CARGO) build --release --target $(WASM_TARGET) -p meshward
	@mkdir -p dist
	@# Drop the stream-callback exports each filter does not implement: Envoy
	@# then skips those calls into the VM (docs/performance.md, "Trimmed exports").
	$(CARGO) build --release -p wasm-trim
	@for f in $(FILTERS) meshward; do \
	  src="target/$(WASM_TARGET)/release/$${f//-/_}.wasm"; \
	  dst="dist/$${f%-filter}.wasm"; \
	  target/release/wasm-trim "$$src" "$$dst"; \
	  printf '%-24s %9d bytes\n' "$$dst" "$$(stat -c %s "$$dst")"; \
	done
	$(CARGO) build --release -p ratelimit-service
	@cp target/release/ratelimit-service dist/ratelimit-service
	@# The CLI's own profile: no LTO (see Cargo.toml).
	$(CARGO) build --profile cli -p meshward-cli
	@cp target/cli/meshward dist/meshward

# The integration tests that do not load a filter through the harness run once; the rest run
# a second time against the suite module (MESHWARD_MODULE=suite: each in-order run of meshward
# filters becomes one suite filter with the same sections), and must give the same answers.
SUITE_SKIP := test_docs_schemas test_istio_manifests test_wasm_exports test_harness_ports test_demo test_envoy_configs test_faults_vm test_images test_service_image test_compose
PYTEST := $(VENV)/bin/python -m pytest -p no:cacheprovider -rfEs $(PYTEST_ARGS)
define pytest-both
	$(PYTEST) integration-tests
	MESHWARD_MODULE=suite $(PYTEST) $(addprefix --ignore=integration-tests/,$(addsuffix .py,$(SUITE_SKIP))) integration-tests
endef

# Run the integration tests only (assumes deps; builds first so dist/ is fresh).
integration: deps build
	$(pytest-both)

test: deps
	$(MAKE) --no-print-directory fmt-check
	$(MAKE) --no-print-directory clippy
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory fuzz-smoke
	$(MAKE) --no-print-directory build
	@# The benchmark's smoke mode: every configuration answers as intended; no timing asserted.
	BENCH_NO_BUILD=1 bash bench/run.sh smoke
	$(pytest-both)

run: deps build
	$(VENV)/bin/python scripts/run_demo.py $(if $(RATE_LIMIT_MODE),--rate-limit-mode $(RATE_LIMIT_MODE)) $(if $(MODULES),--modules $(MODULES))

# Fuzzing (docs/reliability.md, "Fuzzing"). The smoke needs only stable cargo;
# `make fuzz` installs cargo-fuzz the first time and runs libFuzzer.
FUZZ_SMOKE_ITERS ?= 20000
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=

fuzz-smoke:
	MESHWARD_FUZZ_ITERS=$(FUZZ_SMOKE_ITERS) $(CARGO) test -p meshward-fuzz --test smoke

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh $(FUZZ_TARGETS)

bench:
	bench/run.sh "$(MODE)"

# The soak (docs/reliability.md, "Soak"). `make test` runs the same test for 30 s.
SOAK_SECONDS ?= 600
SOAK_RATE ?= 100
soak: deps build
	MESHWARD_SOAK_SECONDS=$(SOAK_SECONDS) MESHWARD_SOAK_RATE=$(SOAK_RATE) MESHWARD_SOAK_OUT=bench/results \
	  $(VENV)/bin/python -m pytest -p no:cacheprovider -rfE -s integration-tests/test_soak.py

# OCI images and releases (docs/deploy.md, "Images and releases"). Stdlib Python 3.11+ only:
# the project venv's interpreter when there is one.
REGISTRY ?= ghcr.io
STD_PYTHON = $(if $(wildcard $(VENV)/bin/python),$(VENV)/bin/python,python3)
image: build
	$(STD_PYTHON) scripts/image.py

release: build
	$(STD_PYTHON) scripts/release.py --registry "$(REGISTRY)"

clean:
	$(CARGO) clean
	rm -rf dist .run
