# amishare — build, test and demo. `make help` lists the targets.
GO            ?= go
ARTIFACTS_DIR ?= .aws-sam/build/AmishareFunction
# A count of executions, not a duration: with a duration, Go 1.26's fuzz
# coordinator can fail a target with a bare "context deadline exceeded" when
# the deadline passes while a worker is busy (golang/go#75804, fixed in 1.27).
FUZZTIME      ?= 20000x
# The CLI's version (amishare --version): the git description of the work
# tree, "dev" outside a git repository.
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Each fuzz target as package:Func; `make test` runs each for $(FUZZTIME).
FUZZ_TARGETS  := ./pkg/event:FuzzDecode ./pkg/amitag:FuzzResolveAccounts ./pkg/kmspolicy:FuzzEdit ./pkg/config:FuzzParse

# The Python tools the tests use (moto, aws-sam-translator, cfn-lint), pinned
# in $(PY_REQUIREMENTS): the machine's python3 when it has exactly those
# versions, otherwise a local $(VENV) that the pytools target installs them into.
PY_REQUIREMENTS := internal/testing/moto/requirements.txt
VENV            := .venv
ifeq ($(shell python3 internal/testing/moto/pytools.py 2>/dev/null && echo ok),ok)
PYTHON  := python3
CFNLINT := cfn-lint
else
PYTHON  := $(CURDIR)/$(VENV)/bin/python
CFNLINT := $(CURDIR)/$(VENV)/bin/cfn-lint
endif
# internal/testing/moto starts moto with this interpreter.
export AMISHARE_MOTO_PYTHON := $(PYTHON)

.DEFAULT_GOAL := help
.PHONY: help build build-AmishareFunction test unit fuzz bench lint demo pytools clean

# The descriptions may name variables: help prints their values.
help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-24s %s\n", $$1, $$2}' | \
		sed -e 's|$$(ARTIFACTS_DIR)|$(ARTIFACTS_DIR)|g' -e 's|$$(FUZZTIME)|$(FUZZTIME)|g' -e 's|$$(VERSION)|$(VERSION)|g'

build: ## build the operator CLI into bin/amishare, version $(VERSION)
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/amishare ./cmd/amishare

build-AmishareFunction: ## SAM's build target: the Lambda bootstrap for arm64 in $(ARTIFACTS_DIR)
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w' \
		-o $(ARTIFACTS_DIR)/bootstrap ./functions/amishare

test: pytools lint unit fuzz ## the whole suite: lint, unit, moto integration, end to end under the Lambda emulator, fuzzing
	@echo "make test: all passed"

# Every AWS call amishare's code makes in the tests is recorded here, then
# checked against the function's role as template.yaml defines it.
CALLS_DIR := $(CURDIR)/.calls

unit: ## every Go test with the race detector (starts and stops moto itself), then the role allows every AWS call they made
	rm -rf $(CALLS_DIR)
	AMISHARE_CALLS_DIR=$(CALLS_DIR) $(GO) test -race -count=1 -timeout 20m ./...
	AMISHARE_CALLS_DIR=$(CALLS_DIR) AMISHARE_CALLS_CHECK=1 $(GO) test -count=1 -run '^TestRecordedCallsAllowed$$' -v ./internal/testing/stack

fuzz: ## run each fuzz target for $(FUZZTIME) (executions)
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=1000x $$pkg; \
	done

bench: pytools ## API calls and time per reconcile, per image of a 1,000-image sweep, and a fleet of 100, 300, 1,000 images tagged at once behind EC2-like buckets, against moto
	$(GO) test -run='^$$' -bench=. -benchtime=20x ./pkg/share/
	$(GO) test -run='^$$' -bench=Sweep -benchtime=3x -timeout 30m ./pkg/sweep/
	$(GO) test -run='^$$' -bench=Burst -benchtime=1x -timeout 60m ./functions/amishare/

lint: pytools ## gofmt, go vet, cfn-lint (both templates), and make help names no variable it does not expand
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(CFNLINT) template.yaml receiver/template.yaml
	@! $(MAKE) -s --no-print-directory help | grep -F '$$(' || { echo "make help prints an unexpanded variable"; exit 1; }

demo: pytools ## share and revoke an AMI (plain and encrypted) against a local moto, through the real handler
	$(GO) run ./cmd/amishare-demo

pytools: ## the pinned Python tools: the machine's if it has them, else install them into .venv
	@if [ "$(PYTHON)" != python3 ] && ! $(PYTHON) internal/testing/moto/pytools.py 2>/dev/null; then \
		echo "python3 lacks the pinned tools of $(PY_REQUIREMENTS): installing them into $(VENV)"; \
		python3 -m venv $(VENV) && $(VENV)/bin/python -m pip install --quiet -r $(PY_REQUIREMENTS) && \
		$(VENV)/bin/python internal/testing/moto/pytools.py || { \
			echo "could not install $(PY_REQUIREMENTS) into $(VENV) (is a Python package index reachable?)"; exit 1; }; \
	fi

clean: ## remove build output and the local Python environment
	rm -rf bin .aws-sam .calls $(VENV)
