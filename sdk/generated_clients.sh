#!/usr/bin/env bash
# Third-party generators accept sdk/openapi.yaml: openapi-generator (PyPI openapi-generator-cli,
# pinned; it bundles the generator and runs on the machine's Java 17) generates the python,
# typescript-fetch and go clients, and each must compile or import (make sdk-test).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.build/openapi-generator"
version=7.26.0
command -v java >/dev/null || { echo "java (17) is needed: apt-get install openjdk-17-jre-headless" >&2; exit 1; }
if [ ! -x "$tools/bin/openapi-generator-cli" ] || ! "$tools/bin/pip" show -q "openapi-generator-cli==$version" 2>/dev/null; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install -q "openapi-generator-cli==$version"
fi
out=$(mktemp -d /tmp/vipay-generated-XXXXXX)
trap 'rm -rf "$out"' EXIT
for g in python typescript-fetch go; do
  echo "-- generate $g"
  "$tools/bin/openapi-generator-cli" generate -i "$root/sdk/openapi.yaml" -g "$g" -o "$out/$g" \
    --package-name vipay_generated >"$out/$g.log" 2>&1 || { tail -20 "$out/$g.log"; exit 1; }
done
echo "-- python: install into a fresh venv and import every API module"
python3 -m venv "$out/venv"
"$out/venv/bin/pip" install -q "$out/python"
"$out/venv/bin/python" - <<'PY'
import importlib, pkgutil
import vipay_generated.api as api
names = [m.name for m in pkgutil.iter_modules(api.__path__)]
for name in names:
    importlib.import_module(f"vipay_generated.api.{name}")
assert "merchant004_api" in names, names
print("python client imports:", ", ".join(names))
PY
echo "-- typescript-fetch: tsc --strict"
"$root/sdk/typescript/node_modules/.bin/tsc" --noEmit --strict --target es2020 --module es2020 \
  --moduleResolution node --lib es2020,dom "$out/typescript-fetch/index.ts"
echo "-- go: go build (standard library only, offline)"
(cd "$out/go" && GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local go build ./... && go vet . )
echo "generated clients compile: python, typescript-fetch, go"
