# trafficctl: see README.md. `make demo` and `make test` install what they need into bin/.
SHELL := /usr/bin/env bash
export GOTOOLCHAIN := local
BIN := $(CURDIR)/bin
K8S_VERSION := v1.37.1
ASSETS := $(BIN)/k8s/$(K8S_VERSION)
CONTROLLER_GEN := go tool controller-gen

.PHONY: all
all: build

.PHONY: generate
generate: ## Generate deepcopy code.
	$(CONTROLLER_GEN) object paths=./api/...

.PHONY: manifests
manifests: ## Generate CRDs and RBAC into config/.
	$(CONTROLLER_GEN) crd:allowDangerousTypes=true rbac:roleName=trafficctl-controller paths=./api/... paths=./controllers/... output:crd:artifacts:config=config/crd output:rbac:artifacts:config=config/rbac

.PHONY: build
build: ## Build the trafficctl binary into bin/.
	go build -o $(BIN)/trafficctl ./cmd/trafficctl

.PHONY: testenv
testenv: ## Install etcd, kube-apiserver and Prometheus into bin/ (skips what is there).
	hack/install-testenv.sh

.PHONY: test
test: testenv ## Run every test against the real apiserver and Prometheus.
	KUBEBUILDER_ASSETS=$(ASSETS) PROMETHEUS=$(BIN)/prometheus go test ./... -count=1 -timeout 30m

.PHONY: unit
unit: ## Run only the tests that need no binaries.
	go test ./... -short -count=1

.PHONY: fmt vet
fmt:
	gofmt -l -w .
vet:
	go vet ./...
