#!/usr/bin/env bash
# Installs the Debian packages the SDK builds and checks need, only when missing (make sdk).
# Go comes from Debian (no Go module proxy here): the toolchain, protoc 3.21 and
# its Go plugins, and the grpc/protobuf/genproto sources in /usr/share/gocode.
set -euo pipefail
need=()
command -v node >/dev/null && command -v npm >/dev/null || need+=(nodejs npm)
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v go >/dev/null || need+=(golang-go)
command -v protoc-gen-go >/dev/null || need+=(protoc-gen-go)
command -v protoc-gen-go-grpc >/dev/null || need+=(protoc-gen-go-grpc)
[ -d /usr/share/gocode/src/google.golang.org/grpc ] || need+=(golang-google-grpc-dev)
[ -d /usr/share/gocode/src/google.golang.org/protobuf ] || need+=(golang-google-protobuf-dev)
[ -d /usr/share/gocode/src/google.golang.org/genproto/googleapis/rpc ] || need+=(golang-google-genproto-dev)
[ -f /usr/include/google/protobuf/timestamp.proto ] || need+=(libprotobuf-dev)
command -v chromium >/dev/null || need+=(chromium)   # the offline reference check (sdk/reference)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${need[@]}"
fi
