"""The layout is a contract (.importlinter, run by `make lint`): these tests prove the
contracts hold on this tree and that breaking one fails the check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from server.platform.settings import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint(tree: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(tree))  # the copy shadows the repo on sys.path
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def tree(tmp_path) -> Path:
    shutil.copytree(ROOT / "server", tmp_path / "server", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "lint", tmp_path / "lint", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def test_the_tree_keeps_every_contract(tree):
    result = lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module, violation, contract", [
    ("platform/times.py", "import server.recharge.tables", "platform imports no area"),
    ("payments/settlement.py", "import server.membership.tables", "payments imports no area"),
    ("recharge/service.py", "import server.membership.tables", "areas are independent"),
    ("merchant/rules.py", "import server.merchant.tables", "merchant layers"),
    # The platform names no area, not even without importing it (lint/area_words.py).
    ("platform/times.py", 'CAPTCHA_PATH = "/api/recharge/captcha"', "platform names no area"),
    ("platform/calls.py", "VIP_ORDER = 1", "platform names no area"),
    ("platform/errors.py", "def merchantLimit(): pass", "platform names no area"),
    ("platform/settings.py", "class S:\n    iap_price_fen: int = 0", "platform names no area"),
])
def test_a_violation_breaks_the_check(tree, module, violation, contract):
    path = tree / "server" / module
    path.write_text(path.read_text() + f"\n{violation}  # deliberate violation\n")
    result = lint(tree)
    assert result.returncode != 0
    assert f"{contract}" in result.stdout and "BROKEN" in result.stdout


def test_area_words_are_words_not_substrings_and_skip_prose():
    """`vipay` is not `vip`, `discharge` is not `charge`; comments and docstrings may
    name who uses a thing."""
    sys.path.insert(0, str(ROOT))
    from lint.area_words import area_words_in

    words = {"vip", "charge", "recharge"}
    source = '"""Used by CreateVipOrder."""\nlog = "vipay.rpc"  # the vip path\ndischarge = 1\n'
    assert area_words_in(source, words, set()) == []
    assert area_words_in('x = f"/api/{a}/recharge"\n', words, set()) == [(1, "/api/{a}/recharge", "recharge")]
    assert area_words_in("chargeLimit = 1\n", words, {"chargeLimit"}) == []
