# airship — `make help` lists the targets.

GO      ?= go
BIN     := bin/airship
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/airshipltd/airship/app.Version=$(VERSION) -X github.com/airshipltd/airship/app.Commit=$(COMMIT)

# The local PostgreSQL and Redis used by `make run-prod` and the tests.
PG_URL    ?= postgres://postgres@127.0.0.1:5432/airship?sslmode=disable
REDIS_URL ?= redis://127.0.0.1:6379/0
URL       ?= http://localhost:8000

.DEFAULT_GOAL := help
.PHONY: help build run run-prod test test-short test-browser test-helm test-observability smoke fuzz bench perf perf-compare perf-overhead seed vet lint docker clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build bin/airship (pure Go, CGO_ENABLED=0)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

run: build ## Serve the API on :8000 (embedded store in ./data unless both backend URLs are set)
	./$(BIN) serve

run-prod: build ## Serve the API on :8000 on the local PostgreSQL and Redis
	@psql "$(subst /airship?,/postgres?,$(PG_URL))" -tAc "SELECT 1 FROM pg_database WHERE datname = 'airship'" | grep -q 1 || \
		psql "$(subst /airship?,/postgres?,$(PG_URL))" -c "CREATE DATABASE airship"
	AIRSHIP_POSTGRES_URL='$(PG_URL)' AIRSHIP_REDIS_URL='$(REDIS_URL)' ./$(BIN) serve

test: ## Run every test with the race detector (needs the local PostgreSQL and Redis)
	$(GO) test -race -count=1 -timeout 30m ./...

test-short: ## Run the tests that need no PostgreSQL or Redis (-short skips the others)
	$(GO) test -race -count=1 -short ./...

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

smoke: ## Run the contract's example session against a running airship (URL=...)
	test/smoketest.sh $(URL)

vet: ## go vet and gofmt
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

lint: vet ## vet + staticcheck (installs it if missing)
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	staticcheck ./...

docker: ## Build the container image (needs a Docker engine)
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t airship:$(VERSION) .

clean: ## Remove build output and the embedded store's ./data
	rm -rf bin data loadtest-out

bench: ## Benchmark the hot paths on real PostgreSQL + Redis
	$(GO) test ./test/bench -run '^$$' -bench . -benchmem -benchtime 2s -count 3

perf: ## Load test a running airship with short settings (URL=, USERS=, RAMP_UP=, HOLD=)
	$(GO) run . loadtest --url $(URL) --users $(or $(USERS),3) --ramp-up $(or $(RAMP_UP),5s) --hold $(or $(HOLD),30s) --out loadtest-out

perf-compare: ## Performance targets: 1k vs 1M products, airship vs redis-benchmark/pgbench, RSS, load scenario (~4 min)
	scripts/perf-compare.sh

perf-overhead: ## Cost of metrics: servers with metrics off and on side by side, interleaved rounds (ROUNDS=, HOLD=, DURATION=; ~15 min)
	scripts/overhead.sh

seed: ## Bulk-load N products and M orders into the configured stores
	$(GO) run . seed --products $(or $(N),100000) --orders $(or $(M),10000)
