"""Assembles the gateway's Wasm network filter (gateway/per_ip_connections.wat, the
per-client-IP connection limit; docs/edge.md) into the binary Envoy loads.
`make protos` runs it; the result is built, git-ignored, like gateway/api.binpb.

    python -m server.platform.gateway_wasm gateway/per_ip_connections.wat gateway/per_ip_connections.wasm
"""

from __future__ import annotations

import sys
from pathlib import Path

import wasmtime


def main(source: str, target: str) -> None:
    Path(target).write_bytes(wasmtime.wat2wasm(Path(source).read_text()))


if __name__ == "__main__":
    main(*sys.argv[1:])
