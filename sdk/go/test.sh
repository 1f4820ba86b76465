#!/usr/bin/env bash
# go test against the running stack (make sdk-test), offline against Debian's Go sources.
set -euo pipefail
exec "$(dirname "$0")/offline.sh" test -count=1 -v "$@"
