#!/usr/bin/env bash
# Go packages from the protos with Debian's stock protoc 3.21 and plugins (make sdk):
# this is also the check that stock protoc accepts every proto file.
set -euo pipefail
cd "$(dirname "$0")/../.."
module=github.com/vipay/vipay/sdk/go
opts=""
for f in $(cd protos && find vipay -name '*.proto' | sort); do
  pkg=$(dirname "$f" | sed 's#^vipay/##')                     # membership/v1
  name=$(echo "$pkg" | tr -d '/')                              # membershipv1
  opts="$opts,M$f=$module/gen/$pkg;$name"
done
opts=${opts#,}
rm -rf sdk/go/gen && mkdir -p sdk/go/gen
protoc -Iprotos -I.build/third_party -I/usr/include \
  --go_out=sdk/go/gen --go_opt="module=$module/gen,$opts" \
  --go-grpc_out=sdk/go/gen --go-grpc_opt="module=$module/gen,$opts" \
  $(find protos -name '*.proto' | sort)
