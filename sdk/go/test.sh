#!/usr/bin/env bash
# go test against the running stack (make sdk-test), offline, in GOPATH mode.
set -euo pipefail
cd "$(dirname "$0")/.gopath/src/vipay.local/sdk"
export GO111MODULE=off GOPROXY=off GOFLAGS= GOPATH="$(cd ../../.. && pwd):/usr/share/gocode"
go test -count=1 -v ./... "$@"
