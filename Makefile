# trafficctl. The two commands a newcomer needs are `make demo` and `make test`; both install
# what they need into bin/ (see hack/install-testenv.sh) and reuse it on the next run.
SHELL := /usr/bin/env bash
export GOTOOLCHAIN := local
BIN := $(CURDIR)/bin
K8S_VERSION := v1.37.1
ASSETS := $(BIN)/k8s/$(K8S_VERSION)
CONTROLLER_GEN := go tool controller-gen
HELM := $(BIN)/helm
TEST_ENV := KUBEBUILDER_ASSETS=$(ASSETS) PROMETHEUS=$(BIN)/prometheus HELM=$(HELM)

.PHONY: all
all: build

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: generate
generate: ## Generate deepcopy code for the API types.
	$(CONTROLLER_GEN) object paths=./api/...

.PHONY: manifests
manifests: ## Generate the CRDs and the controller's ClusterRole into config/.
	$(CONTROLLER_GEN) crd:allowDangerousTypes=true rbac:roleName=trafficctl-controller \
		paths=./api/... paths=./controllers/... \
		output:crd:artifacts:config=config/crd output:rbac:artifacts:config=config/rbac

.PHONY: chart-crds
chart-crds: manifests ## Copy the CRDs generated into config/crd/ to the Helm chart (charts/trafficctl/crds/).
	hack/sync-chart-crds.sh

.PHONY: chart-lint
chart-lint: testenv ## Lint the Helm chart (its tests in charts/ render and install it).
	$(HELM) lint --strict charts/trafficctl

.PHONY: build
build: ## Build bin/trafficctl.
	go build -o $(BIN)/trafficctl ./cmd/trafficctl

.PHONY: testenv
testenv: ## Install etcd, kube-apiserver, kube-controller-manager, kube-scheduler, Prometheus and helm into bin/ (skips what is there).
	hack/install-testenv.sh --with-controllers

.PHONY: demo
demo: testenv ## Run trafficctl end to end on this machine: a healthy rollout, then a faulty one.
	@$(TEST_ENV) go run ./test/e2e/demo

.PHONY: test
test: testenv generate manifests chart-crds ## Run every test against a real kube-apiserver, etcd and Prometheus.
	hack/check-tracked-files.sh
	@if [[ -n "$$CI" ]] && ! git diff --quiet -- api config; then \
		echo "make generate manifests changed files; run it and commit the result:"; git status --short -- api config; exit 1; fi
	@if [[ -n "$$CI" && -n "$$(git status --porcelain -- charts/trafficctl/crds)" ]]; then \
		echo "make chart-crds changed files; run it and commit the result:"; git status --short -- charts/trafficctl/crds; exit 1; fi
	go vet ./...
	$(MAKE) --no-print-directory lint
	$(TEST_ENV) go test $$(go list ./... | grep -v /test/e2e) -count=1 -timeout 20m
	$(TEST_ENV) go test ./test/e2e/... -count=1 -timeout 20m

.PHONY: e2e
e2e: testenv ## Run only the end-to-end scenarios.
	$(TEST_ENV) go test ./test/e2e/... -count=1 -timeout 20m -v

.PHONY: bench-scale
bench-scale: testenv ## Measure the controller with N Canaries (default 1000; N=10000 by hand) and print one table.
	@$(TEST_ENV) go run ./test/scale/cmd/bench-scale -n $${N:-1000} $(BENCH_FLAGS)

.PHONY: decision-quality
decision-quality: ## Measure the analysis policies over thousands of simulated rollouts and print the table.
	go test ./internal/simulation -run TestDecisionQuality -count=1 -v -rollouts=$${ROLLOUTS:-2000} | grep -v '^[=-]'

GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)

$(GOLANGCI_LINT):
	GOBIN=$(BIN)/.lint go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BIN)/.lint/golangci-lint $@

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run the linters STYLE.md asks for (.golangci.yml).
	$(GOLANGCI_LINT) run ./...

.PHONY: fmt
fmt: ## Format the code.
	gofmt -l -w .
