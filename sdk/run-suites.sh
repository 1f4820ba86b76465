#!/usr/bin/env bash
# The SDK suites against the stack python -m sdk.stack started (make sdk-test).
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
echo "== TypeScript (node --test)"; (cd sdk/typescript && npm test --silent) || status=1
echo "== Go (go test)"; sdk/go/test.sh || status=1
echo "== Python (pytest sdk/python/tests)"; "$VIPAY_PYTHON" -m pytest -q -p no:cacheprovider sdk/python/tests || status=1
echo "== README quickstarts (each package installed into an empty folder)"; "$VIPAY_PYTHON" -m sdk.quickstarts || status=1
echo "== API reference offline (headless Chromium, network disabled)"; (cd sdk/reference && node offline-check.mjs) || status=1
echo "== openapi-generator clients (python, typescript-fetch, go) compile"; sdk/generated_clients.sh || status=1
echo "== the spec's examples are what the live stack answers (sdk/examples.py)"; "$VIPAY_PYTHON" -m sdk.examples check || status=1
echo "== schemathesis (sdk/openapi.yaml vs the live gateway)"; "$VIPAY_PYTHON" -m sdk.contract_check || status=1
exit $status
