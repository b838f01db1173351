# Flotilla's developer tasks. `make help` lists them.
GO ?= go
CONTROLLER_GEN ?= $(GO) run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0

.PHONY: help build test generate verify bench-startup

help: ## List the targets.
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## Build bin/flotilla.
	$(GO) build -o bin/flotilla ./cmd/flotilla

test: build ## Run every test against bin/flotilla.
	FLOTILLA_BIN=$(CURDIR)/bin/flotilla $(GO) test -count=1 ./...

generate: ## Regenerate deepcopy code and CRDs from api/.
	GOFLAGS= $(CONTROLLER_GEN) object paths=./api/... crd:crdVersions=v1 output:crd:dir=./config/crd

verify: generate ## Fail if generated files are stale.
	git diff --exit-code -- api config

bench-startup: build ## Time to ready and memory of hub, local cluster and up.
	bin/flotilla bench startup
