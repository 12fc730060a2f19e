# amishare — build, test and demo. `make help` lists the targets.
GO            ?= go
ARTIFACTS_DIR ?= .aws-sam/build/AmishareFunction
FUZZTIME      ?= 5s
# Each fuzz target as package:Func; `make test` runs each for $(FUZZTIME).
FUZZ_TARGETS  := ./pkg/event:FuzzDecode ./pkg/amitag:FuzzResolveAccounts ./pkg/kmspolicy:FuzzEdit ./pkg/config:FuzzParse

.DEFAULT_GOAL := help
.PHONY: help build build-AmishareFunction test unit fuzz bench lint demo check-moto clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-24s %s\n", $$1, $$2}'

build: ## build the operator CLI into bin/amishare
	$(GO) build -o bin/amishare ./cmd/amishare

build-AmishareFunction: ## SAM's build target: the Lambda bootstrap for arm64 in $(ARTIFACTS_DIR)
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w' \
		-o $(ARTIFACTS_DIR)/bootstrap ./functions/amishare

test: check-moto lint unit fuzz ## the whole suite: lint, unit, moto integration, end to end under the Lambda emulator, fuzzing
	@echo "make test: all passed"

unit: ## go vet and every Go test with the race detector (starts and stops moto itself)
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

fuzz: ## run each fuzz target for FUZZTIME (default 5s)
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=1s $$pkg; \
	done

bench: check-moto ## API calls and time per reconcile against moto (calls/op, mutating/op)
	$(GO) test -run='^$$' -bench=. -benchtime=20x ./pkg/share/

lint: ## gofmt, go vet and cfn-lint
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	cfn-lint template.yaml

demo: check-moto ## share and revoke an AMI (plain and encrypted) against a local moto, through the real handler
	$(GO) run ./internal/demo

check-moto: ## fail clearly when moto is not installed
	@command -v moto_server >/dev/null 2>&1 && python3 -c 'import moto.server' 2>/dev/null || { \
		echo "moto is not installed: pip install 'moto[server]==5.2.1' (it provides moto_server, the local AWS emulator the tests use)"; exit 1; }

clean: ## remove build output
	rm -rf bin .aws-sam
