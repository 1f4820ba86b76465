"""`make breaking` (part of `make test`) compares the contracts with the committed
baseline image, so a breaking proto change fails even on a clone of main."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)
MEMBERSHIP = "protos/vipay/membership/v1/membership.proto"
WALLET = "protos/vipay/recharge/v1/wallet.proto"


@pytest.fixture
def tree(tmp_path):
    """A private copy of what `make breaking` reads (not a git checkout, like a CI clone's tree)."""
    for name in ("Makefile", "buf.yaml", "requirements.lock", "pyproject.toml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "protos", tmp_path / "protos")
    shutil.copytree(ROOT / ".build/third_party", tmp_path / ".build/third_party")
    (tmp_path / "gateway").mkdir()
    return tmp_path


def breaking(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", "breaking", f"VENV={VENV}"], cwd=tree, capture_output=True, text=True,
                          timeout=120)


def edit(tree: Path, path: str, old: str, new: str) -> None:
    text = (tree / path).read_text()
    assert old in text
    (tree / path).write_text(text.replace(old, new, 1))


def test_unchanged_and_additive_contracts_pass(tree):
    edit(tree, WALLET, "  int64 balance_fen = 2;\n}", "  int64 balance_fen = 2;\n  // New.\n  string note = 3;\n}")
    result = breaking(tree)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path, old, new, complaint", [
    # An HTTP JSON name the legacy clients parse.
    (MEMBERSHIP, 'json_name = "vip-switch"', 'json_name = "vip_switch"', "json_name"),
    # A gRPC-only field's type.
    (WALLET, "int64 amount_fen = 2;", "int32 amount_fen = 2;", "changed type"),
])
def test_a_breaking_change_fails(tree, path, old, new, complaint):
    edit(tree, path, old, new)
    result = breaking(tree)
    assert result.returncode != 0
    assert complaint in result.stdout + result.stderr
