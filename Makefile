# The two commands: `make run` and `make test`. Everything else is set-up they
# depend on, rebuilt only when stale.
SHELL := /bin/bash
PY_VERSION ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Evaluated by the shell inside recipes: the venv may not exist when make starts.
SITE = $$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
PROTOS := $(shell find protos -name '*.proto')
THIRD_PARTY := .build/third_party
DESCRIPTOR := gateway/api.binpb
GEN_STAMP := gen/.stamp
LUA_TABLE := gateway/legacy_operations.lua
PER_IP_WASM := gateway/per_ip_connections.wasm

.PHONY: run test bench soak lint breaking baseline format protos migrate seed keys clean spec examples sdk sdk-test sdk-ts sdk-python sdk-go tools docs console console-test

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(PY) || $(PY_VERSION) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	# Repo root and generated stubs on the venv's path (see README: generated code).
	echo "$(CURDIR)" > "$(SITE)/vipay-src.pth"
	echo "$(CURDIR)/gen" >> "$(SITE)/vipay-src.pth"
	touch $@

# google/api and google/rpc come from the googleapis-common-protos wheel.
$(THIRD_PARTY)/.stamp: $(VENV)/.installed
	mkdir -p $(THIRD_PARTY)/google/api $(THIRD_PARTY)/google/rpc
	for f in annotations http httpbody field_behavior; do cp "$(SITE)/google/api/$$f.proto" $(THIRD_PARTY)/google/api/; done
	for f in status error_details code; do cp "$(SITE)/google/rpc/$$f.proto" $(THIRD_PARTY)/google/rpc/; done
	touch $@

$(DESCRIPTOR): $(PROTOS) buf.yaml $(THIRD_PARTY)/.stamp
	$(VENV)/bin/buf build -o $@

$(GEN_STAMP): $(PROTOS) $(THIRD_PARTY)/.stamp
	rm -rf gen && mkdir -p gen
	$(PY) -m grpc_tools.protoc -Iprotos -I$(THIRD_PARTY) \
	  --python_out=gen --pyi_out=gen --grpc_python_out=gen $(PROTOS)
	touch $@

# The gateway's table of legacy operations, from their declarations in the protos.
$(LUA_TABLE): $(DESCRIPTOR) $(GEN_STAMP) server/platform/legacy_lua.py
	$(PY) -m server.platform.legacy_lua $(DESCRIPTOR) $@

# The gateway's per-client-IP connection limit, a Wasm network filter (docs/edge.md).
$(PER_IP_WASM): gateway/per_ip_connections.wat server/platform/gateway_wasm.py $(VENV)/.installed
	$(PY) -m server.platform.gateway_wasm $< $@

protos: $(DESCRIPTOR) $(GEN_STAMP) $(LUA_TABLE) $(PER_IP_WASM)

# Idempotent: creates only the dev secrets and keys that are missing (so a new
# kind of key reaches old checkouts too).
keys: $(VENV)/.installed
	@$(PY) -m server keys

migrate: protos keys
	$(PY) -m server migrate

seed: migrate
	$(PY) -m server seed

# REPLICAS=N: N gRPC processes behind Envoy (docs/edge.md; use PostgreSQL for N > 1).
REPLICAS ?= 1
# Development: browser pages on any http://localhost port may call the API (CORS;
# docs/edge.md); set CORS_ALLOWED_ORIGINS (even empty) to choose otherwise.
run: seed console
	CORS_ALLOWED_ORIGINS="$${CORS_ALLOWED_ORIGINS-http://localhost:*}" $(PY) -m server run --replicas $(REPLICAS)

# Headless Chromium (Debian) for the cross-origin browser test (tests/edge/test_cors.py);
# the playwright package in requirements.lock drives it.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

test: protos keys lint breaking $(CHROMIUM)
	$(PY) -m pytest $(PYTEST_ARGS)

# Real load generators (Debian): h2load for gRPC, wrk for HTTP through Envoy.
bench: protos keys
	@command -v h2load >/dev/null && command -v wrk >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq nghttp2-client wrk; }
	$(PY) -m bench

# Mixed load for SOAK_SECONDS (default 900; CI: 60), then memory/FD slopes, errors,
# callback lag and ledger-check (bench/soak.py, docs/operations.md).
SOAK_SECONDS ?= 900
soak: protos keys
	SOAK_SECONDS=$(SOAK_SECONDS) $(PY) -m bench.soak

lint: protos
	$(VENV)/bin/buf lint
	$(VENV)/bin/buf format --diff --exit-code
	$(VENV)/bin/ruff check --quiet --select F server tests bench clients migrations sdk lint
	$(VENV)/bin/lint-imports --no-cache
	@complex="$$($(VENV)/bin/radon cc -n D server)"; test -z "$$complex" || { echo "radon grade D or worse (split them):"; echo "$$complex"; exit 1; }

# Compares the contracts with the committed baseline image (WIRE_JSON: what
# Envoy serves and what gRPC clients send must not break). On CI (a clone of
# main) comparing with main would compare the tree with itself; the baseline is
# the released contract. An intentional break: `make baseline`, commit the
# image with the proto change, and say why in the commit message.
# Both sides are images (`buf build` output: the descriptor Envoy loads is one).
BASELINE := protos/baseline.binpb
breaking: $(DESCRIPTOR)
	$(VENV)/bin/buf breaking $(DESCRIPTOR) --against $(BASELINE)
	@echo "buf breaking: clean against $(BASELINE)"

baseline: $(THIRD_PARTY)/.stamp
	$(VENV)/bin/buf build --exclude-source-info -o $(BASELINE)

# Contracts for other languages (README "SDKs"). The spec is generated, never
# edited, and committed so reviewers see API changes; a test fails when stale.
SPEC := sdk/openapi.yaml
$(SPEC): $(DESCRIPTOR) $(GEN_STAMP) $(wildcard sdk/openapi_gen/*.py) sdk/openapi_gen/examples.json
	$(PY) -m sdk.openapi_gen $(DESCRIPTOR) $@

spec: $(SPEC)

# The spec's examples, recorded from a live stack (sdk/examples.py; make sdk-test checks them).
examples: keys $(DESCRIPTOR)
	$(PY) -m sdk.stack -- $(PY) -m sdk.examples record
	$(PY) -m sdk.openapi_gen $(DESCRIPTOR) $(SPEC)

# Generated SDK code is built, not committed (sdk/typescript/gen, sdk/go/gen).
TS := sdk/typescript
tools: ; sdk/ensure-tools.sh

$(TS)/node_modules/.stamp: $(TS)/package-lock.json
	cd $(TS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The npm package: compiled JS + .d.ts (generated code included), packed into sdk/dist/.
sdk-ts: tools protos $(TS)/node_modules/.stamp
	cd $(TS) && npm run --silent build && rm -f ../dist/vipay-sdk-*.tgz && npm run --silent pack

# The Python wheel: sdk/python (hand-written vipay_sdk) plus the generated stubs (vipay.*),
# built with the venv's setuptools (no build isolation: nothing to download).
PYSDK := sdk/python
sdk-python: protos
	rm -rf $(PYSDK)/src/vipay $(PYSDK)/build sdk/dist/vipay_sdk-*.whl
	cp -r gen/vipay $(PYSDK)/src/vipay
	$(PY) -m pip wheel -q --no-deps --no-build-isolation -w sdk/dist $(PYSDK)
	rm -rf $(PYSDK)/build

# Go: Debian's stock protoc 3.21 + plugins (this also proves protoc accepts every proto) into
# sdk/go/gen, which is committed (a partner's `go get` fetches it); vetted offline against
# Debian's Go sources through a CI-only vendor/ (sdk/go/offline.sh; go.mod stays as published).
sdk-go: tools $(THIRD_PARTY)/.stamp
	sdk/go/generate.sh
	@git diff --quiet -- sdk/go/gen && [ -z "$$(git ls-files --others --exclude-standard sdk/go/gen)" ] || \
	  echo "warning: sdk/go/gen differs from the committed code: commit it (go get serves the committed code)"
	sdk/go/offline.sh vet

# The HTML API reference from the spec (Redocly, pinned in sdk/reference/package-lock.json).
REF := sdk/reference
$(REF)/node_modules/.stamp: $(REF)/package-lock.json
	cd $(REF) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Self-contained (--inlineBundle: no CDN script), and `redocly lint` must report 0 errors.
docs: tools $(SPEC) $(REF)/node_modules/.stamp
	cd $(REF) && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true npm run --silent build
	cd $(REF) && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true npm run --silent lint
	@echo "API reference: $(REF)/index.html"

sdk: $(SPEC) sdk-ts sdk-python sdk-go docs

# A stack on free ports (sdk/stack.py), then each suite against it.
sdk-test: sdk keys
	$(PY) -m sdk.stack -- sdk/run-suites.sh

# The operator console (docs/console.md): a React SPA built into console/dist, served by
# its own Envoy listener on CONSOLE_PORT. Its browser tests drive Debian's chromium.
CONSOLE := console
$(CONSOLE)/node_modules/.stamp: $(CONSOLE)/package-lock.json
	cd $(CONSOLE) && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CONSOLE)/dist/index.html: $(CONSOLE)/node_modules/.stamp $(PROTOS) $(THIRD_PARTY)/.stamp $(shell find $(CONSOLE)/src -path '*/gen' -prune -o -type f -print) $(CONSOLE)/index.html
	cd $(CONSOLE) && npm run --silent build

console:
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
	@$(MAKE) --no-print-directory $(CONSOLE)/dist/index.html

console-test: console protos keys
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }
	@# Chinese labels in the screenshots need a CJK font.
	@fc-list :lang=zh 2>/dev/null | grep -q . || { apt-get update -qq && apt-get install -y -qq fonts-noto-cjk; }
	$(PY) -m tests.browser.stack -- bash -c 'cd $(CONSOLE) && npx playwright test'

format: $(THIRD_PARTY)/.stamp
	$(VENV)/bin/buf format -w

clean:
	rm -rf .build gen $(DESCRIPTOR) $(LUA_TABLE) var $(TS)/gen $(TS)/dist sdk/dist $(PYSDK)/src/vipay sdk/go/vendor sdk/go/.cache $(REF)/index.html $(CONSOLE)/dist $(CONSOLE)/src/gen
