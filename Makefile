# The README's two commands: `make demo` starts the system, `make test` runs every test.
GO ?= go
export VAXPASS_PYTHON := $(CURDIR)/.venv/bin/python
# Issue 3's acceptance size: `vaxpass match` over 1,000,000 people and records in CI.
export VAXPASS_MATCH_PEOPLE ?= 1000000
# Issue 6's acceptance size: reprocessing 100,000 generated records, killed and resumed.
export VAXPASS_REPROCESS_RECORDS ?= 100000

.PHONY: test setup unit fuzz bench build demo test-aws

test: setup unit fuzz test-aws

setup:
	./.ci/setup

unit:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

fuzz:
	FUZZTIME=$${FUZZTIME:-2s} ./.ci/fuzz

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

build:
	CGO_ENABLED=0 $(GO) build -o bin/vaxpass ./cmd/vaxpass

# The demo: a generated registry of synthetic people and a demo facility, loaded on first
# start; the facility's API key is printed on stdout.
demo: build
	./bin/vaxpass serve --demo --data ./data --addr 127.0.0.1:8080

# The emulator part (README "On the emulator"): pinned ministack + SAM CLI venvs cached in
# ~/.cache/vaxpass, template lint, AWS adapter tests against the emulator, sam build +
# sam deploy of template.yaml, DSC publication, end-to-end test of the deployed API.
test-aws:
	./.ci/emulator/run
