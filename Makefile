# The entry points: what a person runs. CI runs exactly `make test` (through .ci/run).
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all deps build release test lint fmt unit integration demo bench clean

all: build

deps:
	bash scripts/setup-deps.sh

build:
	$(CARGO) build --workspace --bins

release:
	$(CARGO) build --workspace --bins --release

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Set-up, formatting, lints, then every test of the workspace, integration tests included
# (they start the binaries built just before).
test: deps lint build
	$(CARGO) test --workspace --no-fail-fast
	bash scripts/check-deploy.sh

demo: deps build
	bash scripts/demo.sh

bench: deps release
	@ls scripts/bench/*.sh >/dev/null 2>&1 || { echo "no benchmark scripts yet"; exit 1; }
	for b in scripts/bench/*.sh; do bash "$$b" || exit 1; done

clean:
	$(CARGO) clean
