#!/usr/bin/env bash
# The SDK suites against the stack python -m sdk.stack started (make sdk-test).
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
echo "== TypeScript (node --test)"; (cd sdk/typescript && npm test --silent) || status=1
echo "== Go (go test)"; sdk/go/test.sh || status=1
echo "== schemathesis (sdk/openapi.yaml vs the live gateway)"; "$VIPAY_PYTHON" -m sdk.contract_check || status=1
exit $status
