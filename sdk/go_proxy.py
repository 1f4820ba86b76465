"""A module proxy in a folder (GOPROXY=file://…) so that a test can run a partner's commands
offline: `go mod init`, `go get github.com/vipay/vipay/sdk/go@vX.Y.Z`, `go run .`.

Serves the Go SDK (sdk/go at its version) and, for every module its requirement graph
names, a go.mod and a zip built from Debian's Go sources (/usr/share/gocode/src, the same
sources sdk/go/offline.sh vendors); a module Debian lacks gets a go.mod naming only itself
(its packages are never built). Checksums cannot come from sum.golang.org here (GOSUMDB=off):
the go command still writes the partner's go.sum, from what this proxy served.

    python -m sdk.go_proxy DIR       writes the proxy into DIR (sdk/quickstarts.py uses build())"""

from __future__ import annotations

import json
import os
import re
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent / "go"
GOCODE = Path("/usr/share/gocode/src")
REQUIRE = re.compile(r"^\s*(?:require\s+)?([\w./-]+\.[\w./-]+)\s+(v[0-9][^\s]*)", re.M)
SKIP_DIRS = {"vendor", ".cache", ".git", "testdata"}


def escape(path: str) -> str:
    """The proxy protocol's case encoding: an upper-case letter becomes '!' + lower-case."""
    return re.sub(r"[A-Z]", lambda m: "!" + m.group(0).lower(), path)


def module_version() -> tuple[str, str]:
    """The Go SDK's module path and version (version.go)."""
    return re.search(r"^module (\S+)", (HERE / "go.mod").read_text(), re.M).group(1), version_of_ours()


def version_of_ours() -> str:
    return "v" + re.search(r'const Version = "([^"]+)"', (HERE / "version.go").read_text()).group(1)


def module_files(root: Path):
    """Files of the module rooted at root: not those of nested modules, vendor/ or testdata."""
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not (here / d / "go.mod").exists())
        for name in sorted(files):
            yield (here / name).relative_to(root), here / name


def write(proxy: Path, path: str, version: str, go_mod: str, source: Path | None) -> None:
    at = proxy / escape(path) / "@v"
    at.mkdir(parents=True, exist_ok=True)
    (at / f"{version}.info").write_text(json.dumps({"Version": version, "Time": "2026-01-01T00:00:00Z"}))
    (at / f"{version}.mod").write_text(go_mod)
    if source is not None:
        with zipfile.ZipFile(at / f"{version}.zip", "w", zipfile.ZIP_STORED) as z:
            for rel, f in module_files(source):
                z.write(f, f"{path}@{version}/{rel.as_posix()}")
    with (at / "list").open("a") as listing:
        listing.write(version + "\n")


def build(proxy: Path) -> None:
    ours = (HERE / "go.mod").read_text()
    module, version = module_version()
    write(proxy, module, version, ours, HERE)
    seen, queue = {(module, version)}, REQUIRE.findall(ours)
    while queue:
        path, version = queue.pop()
        if (path, version) in seen:
            continue
        seen.add((path, version))
        source = GOCODE / path
        if (source / "go.mod").exists() or (source.is_dir() and any(source.glob("*.go"))):
            go_mod = (source / "go.mod").read_text() if (source / "go.mod").exists() else f"module {path}\n"
            queue.extend(REQUIRE.findall(go_mod))
            write(proxy, path, version, go_mod, source)
        else:
            write(proxy, path, version, f"module {path}\n", None)


if __name__ == "__main__":
    build(Path(sys.argv[1]))
