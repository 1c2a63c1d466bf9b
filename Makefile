# The README's two commands: `make demo` starts the system, `make test` runs every test.
GO ?= go
export VAXPASS_PYTHON := $(CURDIR)/.venv/bin/python
# Issue 3's acceptance size: `vaxpass match` over 1,000,000 people and records in CI.
export VAXPASS_MATCH_PEOPLE ?= 1000000
# Issue 6's acceptance size: reprocessing 100,000 generated records, killed and resumed.
export VAXPASS_REPROCESS_RECORDS ?= 100000

.PHONY: test setup unit fuzz bench build demo test-aws screenshots

test: setup unit fuzz test-aws

setup:
	./.ci/setup

unit:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

# Every fuzz target a second (52 targets; their seeds also run in `unit`): CI's 30 minutes.
fuzz:
	FUZZTIME=$${FUZZTIME:-1s} ./.ci/fuzz

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

# The README's screenshots (docs/screenshots): a demo server in a scratch directory, its
# sample upload matched and signed, the citizens' page (phone, desktop), the passport's PDF
# (first page, 100 dpi, Poppler) and the ops dashboard, driven in headless Chromium.
screenshots:
	VAXPASS_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -timeout 15m -run '^TestScreenshots$$' -v ./tests/screenshots/
