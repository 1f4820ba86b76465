"""sdk/go/go.mod is what `go mod tidy` would keep: no declared dependency requires a newer
version of another declared dependency than go.mod names. (A partner's `go get` would select
the newer one anyway — minimal version selection — but building the module itself with
network access would stop at "updates to go.mod needed".) No module proxy here: each
dependency's own go.mod is read from Debian's Go sources, the ones sdk/go/offline.sh builds
against (their versions are close to, not always exactly, the declared ones)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOCODE = Path("/usr/share/gocode/src")
REQUIRE = re.compile(r"^\s*(?:require\s+)?([\w./-]+\.[\w./-]+)\s+(v[0-9][^\s]*)", re.M)


def requirements(go_mod: str) -> dict[str, str]:
    return dict(REQUIRE.findall(go_mod))


def semver(version: str) -> tuple:
    """Orders v1.2.3 > v1.2.3-pre (pseudo-versions are pre-releases, ordered by timestamp)."""
    core, _, pre = version[1:].partition("-")
    return tuple(int(x) for x in core.split(".")) + ((1, "") if not pre else (0, pre))


def too_old(go_mod: str, sources: Path) -> list[str]:
    ours = requirements(go_mod)
    found = []
    for path in ours:
        theirs = sources / path / "go.mod"
        if not theirs.exists():
            continue
        for needed, version in requirements(theirs.read_text()).items():
            if needed in ours and semver(version) > semver(ours[needed]):
                found.append(f"{path} requires {needed} {version}, go.mod names {ours[needed]}")
    return found


@pytest.mark.skipif(not GOCODE.is_dir(), reason="Debian's Go sources are not installed (sdk/ensure-tools.sh)")
def test_go_mod_names_the_versions_its_dependencies_require():
    assert too_old((ROOT / "sdk/go/go.mod").read_text(), GOCODE) == []
    # google.golang.org/protobuf 1.28's go.mod requires github.com/golang/protobuf v1.5.0.
    assert too_old((ROOT / "sdk/go/go.mod").read_text().replace("golang/protobuf v1.5.0", "golang/protobuf v1.4.3"),
                   GOCODE) == ["google.golang.org/protobuf requires github.com/golang/protobuf v1.5.0, "
                               "go.mod names v1.4.3"]
