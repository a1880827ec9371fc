# milestones: the two set-up commands are `make run` and `make test`.
SHELL := /bin/bash
SWIFT ?= swift
BIN_RELEASE := .build/release/milestones
SCRATCH ?= $(shell mktemp -d /tmp/milestones-run.XXXXXX 2>/dev/null || echo /tmp/milestones-run)
# chromium: the report's test renders it in a real headless browser. golang-go and
# golang-golang-x-mod-dev: Go's sumdb/note and sumdb/tlog check the published tiles.
# curl: mirror and cosign fetch a published log over http(s) with it.
# postgresql: the tests run the PostgreSQL read models against a throw-away server (scripts/with-postgres.sh).
APT_PACKAGES := libssl-dev libsqlite3-dev sqlite3 openssl python3 chromium golang-go golang-golang-x-mod-dev curl postgresql

.PHONY: deps build release run test bench bench-postgres bench-quick bench-10m soak fuzz clean lint man install

## deps: install the system packages the build and tests need (only those missing)
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@python3 -c "import cryptography" 2>/dev/null || python3 -m pip install -q cryptography

build: deps
	$(SWIFT) build

## release: the Swift runtime and Foundation linked in (--static-swift-stdlib): each run
## starts ~10 ms sooner (no dynamic symbol binding), which is most of a one-record command;
## and generic code specialised across our modules (-cross-module-optimization): ~7% off verify
RELEASE_FLAGS := -c release --static-swift-stdlib -Xswiftc -cross-module-optimization
release: deps
	$(SWIFT) build $(RELEASE_FLAGS)

## run: build, then make a ledger from the bundled fixture in a scratch folder and show it
run: release
	@bash scripts/run-demo.sh "$(BIN_RELEASE)" "$(SCRATCH)"

## test: the whole suite (unit, end-to-end, independent Python checks), beside a throw-away
## PostgreSQL server that it starts and stops (the PostgreSQL tests fail, not skip, without it)
test: deps
	$(SWIFT) build
	bash scripts/with-postgres.sh $(SWIFT) test

## bench: 10k, 100k and 1M-event ledgers; figures as ratios against baselines measured in the same run;
## then the PostgreSQL read models (bench-postgres)
bench: release
	@bash bench/run.sh "$(BIN_RELEASE)" 10000 100000 1000000
	@$(MAKE) --no-print-directory bench-postgres

## bench-postgres: the PostgreSQL read models at 100k and 1M events beside a throw-away server: first
## projection against psql's own load, status under 16 readers against SQLite's. Writes bench/results/postgres-DATE.md
bench-postgres: release
	@bash scripts/with-postgres.sh python3 bench/postgres.py "$(BIN_RELEASE)" 100000 1000000

bench-quick: release
	@bash bench/run.sh "$(BIN_RELEASE)" 100000

## bench-10m: verify's peak memory at 10M and 1M events (its growth per record), verify against
## openssl dgst, one batch record (time and peak memory) and one lean SQLite projection at 10M:
## ~5 min, plus ~5 min once to generate the events (3.3 GB in the cache); needs ~15 GB of disk.
## Writes bench/results/latest-10000000.md and .json (make bench's scaling table reads them).
## BENCH_10M_FLAGS=--projection adds our first projection (one run: minutes, and GiBs of memory)
BENCH_10M_FLAGS ?=
bench-10m: release
	@bash bench/run.sh --memory "$(BIN_RELEASE)" 10000000 $(BENCH_10M_FLAGS)

## soak: the crash harness with 1,000 SIGKILLs (make test runs it with 50)
soak: deps
	$(SWIFT) build
	MILESTONES_SOAK_KILLS=1000 $(SWIFT) test --filter crashHarness

## fuzz: libFuzzer on the JSON reader, event validator, verify's one-pass event reader (against
## the full path), record-line verifier, proof and signed-note parsers, FUZZ_SECONDS each
## (default 60), from the seed corpora in fixtures/fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= json event plain record proof note
fuzz: deps
	MILESTONES_FUZZ=1 $(SWIFT) build -c release --scratch-path .build-fuzz --product milestones-fuzz -Xswiftc -sanitize=fuzzer,address
	@mkdir -p .build-fuzz/corpus .build-fuzz/crashes
	@set -o pipefail; for t in $(FUZZ_TARGETS); do \
	  mkdir -p .build-fuzz/corpus/$$t; \
	  echo "== fuzzing $$t for $(FUZZ_SECONDS) s"; \
	  MILESTONES_FUZZ_TARGET=$$t .build-fuzz/release/milestones-fuzz .build-fuzz/corpus/$$t fixtures/fuzz/$$t \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -artifact_prefix=.build-fuzz/crashes/$$t- -print_final_stats=1 2>&1 \
	    | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|==.*ERROR|SUMMARY)" || exit 1; \
	done

## man: manual pages from the command definitions (swift-argument-parser's generate-manual plugin), in .build/man
man: deps
	mkdir -p .build/man
	$(SWIFT) package --allow-writing-to-directory .build/man generate-manual --multi-page --output-directory .build/man

## install: the release binary, its manual pages and its bash, zsh and fish completions under PREFIX (default /usr/local)
PREFIX ?= /usr/local
install: release man
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
	  $(DESTDIR)$(PREFIX)/share/zsh/site-functions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 0755 $(BIN_RELEASE) $(DESTDIR)$(PREFIX)/bin/milestones
	install -m 0644 .build/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	$(BIN_RELEASE) --generate-completion-script bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/milestones
	$(BIN_RELEASE) --generate-completion-script zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_milestones
	$(BIN_RELEASE) --generate-completion-script fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/milestones.fish

lint:
	$(SWIFT) format lint --recursive Sources Tests

clean:
	rm -rf .build
