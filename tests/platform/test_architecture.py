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
    assert "11 kept, 0 broken" in result.stdout


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
    ("membership/servicer.py", "import server.membership.tables", "servicers and CLIs import no table rows"),
    ("recharge/cli.py", "from server.recharge.tables import RechargeOrderRow", "servicers and CLIs import no table rows"),
    ("recharge/wallet_servicer.py", "import server.recharge.tables", "servicers and CLIs import no table rows"),
    ("merchant/servicer.py", "import server.merchant.tables", "servicers and CLIs import no table rows"),
    ("payments/refund_servicer.py", "import server.payments.refund_tables", "servicers and CLIs import no table rows"),
    ("operators/service.py", "import server.payments.refunds", "operators (accounts, sessions, roles, audit) imports no"),
    ("operators/roles.py", "import server.operators.tables", "operators layers"),
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


# Attribute assignments that are not wiring: DB-API connection modes set the driver's
# documented way; the interceptor's own per-call record, filled in once the caller is
# known; thread-local state; a function of the same module given its companion
# (unit_of_work.py, moving with the hot reads, issue 17).
NOT_WIRING = {
    ("server/platform/database.py", "dbapi_conn.isolation_level"),
    ("server/platform/unit_of_work.py", "conn.dbapi_connection.autocommit"),
    ("server/platform/calls.py", "call.principal"),
    ("server/platform/unit_of_work.py", "local.conn"),
    ("server/platform/unit_of_work.py", "local.cursor"),
    ("server/platform/unit_of_work.py", "reads.one"),
}


def attribute_assignments(path: Path) -> list[tuple[int, str]]:
    """`x.attr = ...` (and `+=`) whose object is not the method's own (self / cls)."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
        for target in targets:
            for t in (target.elts if isinstance(target, ast.Tuple) else [target]):
                if isinstance(t, ast.Attribute) and not (isinstance(t.value, ast.Name) and t.value.id in ("self", "cls")):
                    found.append((t.lineno, ast.unparse(t)))
    return found


def wiring_violations(root: Path) -> list[str]:
    files = sorted((root / "server" / "platform").glob("*.py")) + [root / "server" / "app.py",
                                                                   root / "server" / "__main__.py"]
    return [f"{f.relative_to(root)}:{line}: {text}" for f in files for line, text in attribute_assignments(f)
            if (str(f.relative_to(root)), text) not in NOT_WIRING]


def test_the_composition_root_and_platform_set_nothing_onto_built_objects(tree):
    """Wiring is by constructor: nothing in app.py, __main__.py or platform/ assigns onto
    another object's attribute after it is built (issue 16 §3)."""
    assert wiring_violations(ROOT) == []
    app = tree / "server" / "app.py"
    app.write_text(app.read_text().replace("    return App(", "    channels.on_refund = refund_statement\n    return App(", 1))
    assert wiring_violations(tree) == ["server/app.py:" + str(next(
        i for i, line in enumerate(app.read_text().splitlines(), 1) if "channels.on_refund =" in line))
        + ": channels.on_refund"]
