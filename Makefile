# airship — `make help` lists the targets.

GO      ?= go
BIN     := bin/airship
# The release version is the VERSION file, and nothing else: the binary,
# the image label and (checked by a test) the chart's appVersion and
# CHANGELOG.md's newest release all say it. Builds between releases carry
# the last release's version and their own commit.
VERSION    := $(shell cat VERSION)
COMMIT     ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILD_DATE := $(or $(BUILD_DATE),$(shell date -u +%Y-%m-%dT%H:%M:%SZ))
LDFLAGS := -s -w -X github.com/airshipltd/airship/internal/release.Version=$(VERSION) -X github.com/airshipltd/airship/internal/release.Commit=$(COMMIT) \
	-X github.com/airshipltd/airship/internal/release.BuildDate=$(BUILD_DATE)

# The local PostgreSQL and Redis used by `make run-prod` and the tests.
PG_URL    ?= postgres://postgres@127.0.0.1:5432/airship?sslmode=disable
REDIS_URL ?= redis://127.0.0.1:6379/0
URL       ?= http://localhost:8000

# The container image (make image) and the static Linux binary in it, which
# cf push uploads too.
IMAGE      ?= airship:dev
BASE_IMAGE ?= gcr.io/distroless/static-debian12:nonroot
ARCH       ?= $(shell $(GO) env GOARCH)
TAGS       ?=
LINUX_BIN  := bin/linux-$(ARCH)/airship
REVISION   ?= $(COMMIT)

# make debug: Delve, pinned and installed into a cache (whatever GOBIN
# says), and where its headless server listens.
DLV_VERSION ?= v1.27.2
DLV         ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/airship-dlv/$(DLV_VERSION)/dlv
DLV_ADDR    ?= 127.0.0.1:2345

.DEFAULT_GOAL := help
.PHONY: help build build-linux build-remote run run-prod test test-short test-cluster test-split test-browser test-helm test-observability test-container test-debug debug smoke fuzz bench perf perf-compare perf-dump perf-scale perf-embedded perf-overhead perf-floor seed vet lint lint-openapi image clean generate check-generate test-upgrade check-proto-compat

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build bin/airship (pure Go, CGO_ENABLED=0)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

build-remote: ## Build bin/airship-remote: the same binary plus serve --modules gateway|products|orders (-tags remote)
	CGO_ENABLED=0 $(GO) build -tags remote -trimpath -ldflags '$(LDFLAGS)' -o bin/airship-remote .

run: build ## Serve the API on :8000 (embedded store in ./data unless both backend URLs are set)
	./$(BIN) serve

run-prod: build ## Serve the API on :8000 on the local PostgreSQL and Redis (PG_URL=, REDIS_URL=; creates PG_URL's database if missing)
	scripts/ensure-database.sh '$(PG_URL)'
	AIRSHIP_POSTGRES_URL='$(PG_URL)' AIRSHIP_REDIS_URL='$(REDIS_URL)' ./$(BIN) serve

# Only app's files differ between the default build and -tags remote (the
# Connect wiring, and the split end-to-end and process tests), so the
# remote build's run covers ./app; every other package is the same code.
test: ## Run every test with the race detector, in the default build and with -tags remote (needs the local PostgreSQL, Redis and RabbitMQ)
	$(GO) test -race -count=1 -timeout 30m ./...
	$(GO) test -race -count=1 -timeout 30m -tags remote ./app/...

test-short: ## Run the tests that need no PostgreSQL, Redis or RabbitMQ (-short skips the others)
	$(GO) test -race -count=1 -short ./...
	$(GO) test -race -count=1 -short -tags remote ./app/...

test-cluster: ## Only the Redis Cluster tests (they start their own 6-node cluster; part of make test)
	$(GO) test -race -count=1 -v ./test/cluster

test-split: ## Only the tests of modules in separate processes and over Connect (part of make test)
	$(GO) test -race -count=1 ./products/productsrpc ./orders/ordersrpc
	$(GO) test -race -count=1 -tags remote -run 'Split|DefaultBuild|ExampleSession|ConcurrentOrders' ./app

test-browser: ## Check /docs and /redoc in headless Chromium (needs /usr/bin/chromium); writes docs/img/*.png
	$(GO) test -tags browser -count=1 -timeout 5m ./test/browser

FUZZ_TIME ?= 15s
fuzz: ## Run each fuzz target for FUZZ_TIME (default 15s); new failing inputs land in gateway/testdata/fuzz
	@for target in $$($(GO) test ./gateway -list '^Fuzz' | grep '^Fuzz'); do \
		echo "fuzz $$target for $(FUZZ_TIME)"; \
		$(GO) test ./gateway -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZ_TIME) || exit 1; \
	done

test-observability: ## Real Prometheus scrapes a running airship; every dashboard and alert expression evaluated; promtool checks and rule tests (installs Debian's prometheus if missing)
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || { \
		echo "installing Debian's prometheus package (prometheus, promtool)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	$(GO) test -tags observability -count=1 -timeout 10m -v ./test/observability

# The Helm chart's checks: a pinned helm, and kube-apiserver + etcd built
# once per machine (deploy/helmtest/build-k8s.sh) into this cache.
HELM_VERSION := v3.22.0
K8S_CACHE    ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/airship-k8s
HELM         ?= $(K8S_CACHE)/helm-$(HELM_VERSION)/helm
HELM_LDFLAGS := -s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37 \
	-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37

test-helm: ## Lint, render and apply the Helm chart to a real kube-apiserver; run the Kubernetes docs (first run builds it: ~10 min)
	@test -x '$(HELM)' || GOBIN='$(dir $(HELM))' $(GO) install -ldflags '$(HELM_LDFLAGS)' helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	@bin=$$(AIRSHIP_K8S_CACHE='$(K8S_CACHE)' deploy/helmtest/build-k8s.sh) && \
		cd deploy/helmtest && AIRSHIP_K8S_BIN="$$bin" HELM='$(HELM)' $(GO) test -count=1 -timeout 20m -v ./...

# The previous release is the newest one CHANGELOG.md records with its
# commit; PREV= and CUR= (commits, or directories holding airship and
# airship-remote) point make test-upgrade at another pair.
PREV ?=
CUR  ?=

test-upgrade: ## Run the previous release (CHANGELOG.md) beside this tree on PostgreSQL + Redis + RabbitMQ, split, and the embedded store, through a rollback (PREV=, CUR=; ~5 min)
	AIRSHIP_UPGRADE_PREV='$(PREV)' AIRSHIP_UPGRADE_CUR='$(CUR)' $(GO) test -tags upgrade -count=1 -timeout 30m -v ./test/upgrade

# buf, pinned, installed into a cache outside the repository.
BUF_VERSION := v1.75.0
BUF         ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/airship-buf/$(BUF_VERSION)/buf

check-proto-compat: ## buf breaking: the module API under api/ must not break the previous release's (CHANGELOG.md)
	@test -x '$(BUF)' || GOBIN='$(dir $(BUF))' $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	@prev=$$($(GO) run ./scripts/release previous) && \
		echo "buf breaking api --against the previous release's api/ ($$prev)" && \
		'$(BUF)' breaking api --against "$$(git rev-parse --path-format=absolute --git-common-dir)#ref=$$prev,subdir=api"

smoke: ## Run the contract's example session against a running airship (URL=...)
	test/smoketest.sh $(URL)

vet: ## go vet (both builds) and gofmt
	$(GO) vet ./...
	$(GO) vet -tags remote ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

# staticcheck, pinned, installed into a cache outside the repository.
STATICCHECK_VERSION := v0.8.2
STATICCHECK ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/airship-staticcheck/$(STATICCHECK_VERSION)/staticcheck

lint: vet ## vet + staticcheck (pinned; installs it into ~/.cache if missing), both builds
	@test -x '$(STATICCHECK)' || GOBIN='$(dir $(STATICCHECK))' $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	'$(STATICCHECK)' ./...
	'$(STATICCHECK)' -tags remote ./...

# Stoplight Spectral's spectral:oas rules (.spectral.yaml) on the OpenAPI
# document; a pinned spectral-cli installed with npm into this cache.
SPECTRAL_VERSION := 6.16.3
SPECTRAL_DIR     ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/airship-spectral-$(SPECTRAL_VERSION)

lint-openapi: ## Lint gateway/apidocs/openapi.yaml with Spectral (spectral:oas); any error or warning fails (installs spectral-cli with npm)
	@test -x '$(SPECTRAL_DIR)/node_modules/.bin/spectral' || npm install --silent --no-audit --no-fund --ignore-scripts \
		--prefix '$(SPECTRAL_DIR)' @stoplight/spectral-cli@$(SPECTRAL_VERSION)
	'$(SPECTRAL_DIR)/node_modules/.bin/spectral' lint --ruleset .spectral.yaml --fail-severity warn gateway/apidocs/openapi.yaml

build-linux: ## Build the static Linux binary bin/linux-<arch>/airship (for the image and cf push; TAGS=remote for split modules)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(ARCH) $(GO) build -tags '$(TAGS)' -trimpath -ldflags '$(LDFLAGS)' -o $(LINUX_BIN) .
	mkdir -p bin/image-data

image: build-linux ## Build the container image IMAGE (airship:dev) on BASE_IMAGE (distroless; scratch pulls nothing)
	DOCKER_BUILDKIT=0 docker build --build-arg BASE_IMAGE='$(BASE_IMAGE)' --build-arg TARGETARCH=$(ARCH) \
		--build-arg VERSION='$(VERSION)' --build-arg REVISION='$(REVISION)' \
		--build-arg CREATED='$(BUILD_DATE)' -t '$(IMAGE)' .

test-container: ## Build the image on scratch and run it on PostgreSQL + Redis and on the embedded store (starts dockerd if needed)
	scripts/test-container.sh

debug: ## Build without optimisations and run airship under Delve, headless on DLV_ADDR (127.0.0.1:2345); ARGS= for airship
	@test -x '$(DLV)' || GOBIN='$(dir $(DLV))' $(GO) install github.com/go-delve/delve/cmd/dlv@$(DLV_VERSION)
	CGO_ENABLED=0 $(GO) build -gcflags='all=-N -l' -ldflags '-X github.com/airshipltd/airship/internal/release.Version=$(VERSION)-debug' -o bin/airship-debug .
	'$(DLV)' exec bin/airship-debug --headless --listen=$(DLV_ADDR) \
		--api-version=2 --accept-multiclient --continue -- $(or $(ARGS),serve)

test-debug: ## Run airship under make debug, stop at a breakpoint in GET /products/{id} through Delve's API
	cd test/debug && $(GO) test -count=1 -timeout 20m ./...

clean: ## Remove build output and the embedded store's ./data
	rm -rf bin data loadtest-out

bench: ## Benchmark the hot paths on real PostgreSQL + Redis
	$(GO) test ./test/bench -run '^$$' -bench . -benchmem -benchtime 2s -count 3

perf: ## Load test a running airship for 35 s (URL=, USERS=, RAMP_UP=5s, HOLD=30s); fails past 1% errors
	$(GO) run . loadtest --url $(URL) --users $(or $(USERS),3) --ramp-up $(or $(RAMP_UP),5s) --hold $(or $(HOLD),30s) --out loadtest-out

perf-compare: ## Performance targets: 1k vs 1M products, airship vs redis-benchmark/pgbench, RSS, load scenario (~4 min)
	scripts/perf-compare.sh

perf-dump: ## Time export and import of 1M products and 100k orders between the stores, with peak RSS (~3 min)
	scripts/dump-perf.sh

# The Go code under api/ is generated from the .proto files beside it by
# protoc (Debian's protobuf-compiler) with these plugins, and the Go
# client's under client/internal/gen from the OpenAPI document by
# oapi-codegen (with client/internal/gen/oapi-codegen.yaml), each
# installed at a pinned version into a cache.
PROTOC_GEN_GO_VERSION         := v1.36.12
PROTOC_GEN_CONNECT_GO_VERSION := v1.21.1
PROTOC_GEN_BIN ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/airship-protoc-gen
OAPI_CODEGEN_VERSION := v2.8.2
OAPI_CODEGEN_BIN     ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/airship-oapi-codegen
GENERATED            := api client/internal/gen

generate: ## Regenerate the Go code under api/ from its .proto files (needs protoc: apt-get install protobuf-compiler) and the client's under client/internal/gen from openapi.yaml
	@command -v protoc >/dev/null || { echo "make generate needs protoc: apt-get install -y protobuf-compiler"; exit 1; }
	@GOBIN='$(PROTOC_GEN_BIN)' $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@GOBIN='$(PROTOC_GEN_BIN)' $(GO) install connectrpc.com/connect/cmd/protoc-gen-connect-go@$(PROTOC_GEN_CONNECT_GO_VERSION)
	find api -name '*.pb.go' -o -name '*.connect.go' | xargs rm -f
	cd api && PATH='$(PROTOC_GEN_BIN)':"$$PATH" protoc -I . \
		--go_out=.. --go_opt=module=github.com/airshipltd/airship \
		--connect-go_out=.. --connect-go_opt=module=github.com/airshipltd/airship \
		$$(find airship -name '*.proto' | sort)
	@GOBIN='$(OAPI_CODEGEN_BIN)' $(GO) install github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@$(OAPI_CODEGEN_VERSION)
	cd client/internal/gen && '$(OAPI_CODEGEN_BIN)/oapi-codegen' -config oapi-codegen.yaml ../../../gateway/apidocs/openapi.yaml

check-generate: generate ## Fail if the generated code under api/ or client/internal/gen differs from what make generate writes
	@git add -N $(GENERATED) && git diff --exit-code --stat -- $(GENERATED) || { echo "generated code is stale; run make generate and commit it"; exit 1; }

perf-scale: ## 1, 2, 3 replicas and split modules side by side: 32-connection throughput and the load scenario (~10 min)
	scripts/perf-scale.sh

perf-embedded: ## The embedded store against PostgreSQL + Redis at 3 users, side by side (PRODUCTS=, ROUNDS=, HOLD=; ~3 min)
	scripts/perf-embedded.sh

perf-floor: ## airship against a minimal Go server doing the same backend work, over TCP and Unix sockets: throughput at 32 connections, latency at 3 (ROUNDS=, DURATION=, TRANSPORTS=; ~11 min)
	scripts/perf-floor.sh

perf-overhead: ## Cost of metrics: servers with metrics off and on side by side, interleaved rounds (ROUNDS=, HOLD=, DURATION=; ~15 min)
	scripts/overhead.sh

seed: ## Bulk-load N products and M orders into the configured stores
	$(GO) run . seed --products $(or $(N),100000) --orders $(or $(M),10000)
