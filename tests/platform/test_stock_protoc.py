"""Every proto compiles with Debian's stock protoc (3.21), which the Go, Java and
Ruby generators rely on: no two field names of a message may differ only in case
or underscores (proto3 JSON names). `make sdk` installs protoc; without it this
check runs in `make sdk-test` (sdk/go/generate.sh) instead."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("protoc") is None or not Path("/usr/include/google/protobuf").is_dir(),
                    reason="Debian protoc not installed (make sdk installs it)")
def test_stock_protoc_accepts_every_proto(tmp_path):
    protos = sorted(str(p.relative_to(ROOT / "protos")) for p in (ROOT / "protos").rglob("*.proto"))
    result = subprocess.run(["protoc", "-Iprotos", "-I.build/third_party", "-I/usr/include",
                             f"--descriptor_set_out={tmp_path / 'all.pb'}", *protos],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
