#!/usr/bin/env bash
# Builds and tests the Go module OFFLINE (no module proxy here) against Debian's Go sources
# in /usr/share/gocode: a CI-only vendor/ (git-ignored) holds links to them and a
# modules.txt naming the versions go.mod declares, so `-mod=vendor` never reads the module
# graph. The published go.mod is untouched: a partner with internet runs `go get`.
#
#   sdk/go/offline.sh vet|test [args]       in sdk/go
# (The README quickstart runs as a partner's module through sdk/go_proxy.py instead.)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src=/usr/share/gocode/src
export GOPROXY=off GOFLAGS=-mod=vendor GO111MODULE=on GOSUMDB=off GOTOOLCHAIN=local
export GOCACHE="${GOCACHE:-$here/.cache/build}"

# vendor DIR: vendor/ for the module in DIR.
vendor() {
  local dir=$1
  rm -rf "$dir/vendor" && mkdir -p "$dir/vendor"
  local txt="$dir/vendor/modules.txt"
  : > "$txt"
  add() {  # path version directory
    mkdir -p "$dir/vendor/$(dirname "$1")"
    ln -s "$3" "$dir/vendor/$1"
    echo "# $1 $2" >> "$txt"
    local lang; lang=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$3/go.mod" 2>/dev/null | head -1)
    echo "## explicit${lang:+; go $lang}" >> "$txt"
    (cd "$3" && find -L . -name '*.go' ! -name '*_test.go' ! -path '*/testdata/*' ! -path '*/vendor/*' \
       -printf '%h\n' | sort -u | sed "s#^\.#$1#") >> "$txt"
  }
  # The requirements sdk/go/go.mod declares (direct and indirect), from Debian's sources.
  while read -r path version; do
    [ -d "$src/$path" ] || { echo "offline.sh: $src/$path missing (sdk/ensure-tools.sh installs it)" >&2; exit 1; }
    add "$path" "$version" "$src/$path"
  done < <(sed -n 's/^\t\([^ ]*\) \(v[^ ]*\).*/\1 \2/p' "$here/go.mod")
}

case "${1:-}" in
  vet|test|build)
    cmd=$1; shift
    vendor "$here"
    cd "$here" && go "$cmd" "$@" ./...
    ;;
  *) echo "usage: $0 vet|test|build [args]" >&2; exit 2 ;;
esac
