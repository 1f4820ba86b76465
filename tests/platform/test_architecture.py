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
    ("server/platform/hot_reads.py", "conn.dbapi_connection.autocommit"),
    ("server/platform/calls.py", "call.principal"),
    ("server/platform/hot_reads.py", "local.conn"),
    ("server/platform/hot_reads.py", "local.cursor"),
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


AREAS = ("membership", "recharge", "merchant")


def literal_reasons(root: Path) -> list[str]:
    """DomainError(...) raised with a string literal as its reason in an area."""
    import ast

    found = []
    for area in AREAS:
        for f in sorted((root / "server" / area).glob("*.py")):
            for node in ast.walk(ast.parse(f.read_text())):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "DomainError"
                        and node.args and isinstance(node.args[0], ast.Constant)):
                    found.append(f"{f.relative_to(root)}:{node.lineno}: {node.args[0].value}")
    return found


def test_every_area_names_its_refusals_and_states_in_str_enums(tree):
    """Each area's refusal reasons and order states are StrEnums whose values are the
    wire strings (issue 16 §5); no DomainError reason is a bare string literal."""
    from enum import StrEnum

    from server.membership import rules as membership
    from server.merchant import rules as merchant
    from server.recharge import rules as recharge

    assert literal_reasons(ROOT) == []
    for rules in (membership, recharge, merchant):
        assert issubclass(rules.Refusal, StrEnum)
        assert all(r.value == r.name for r in rules.Refusal)  # the wire reason is the member's name
    for rules in (recharge, merchant):
        assert issubclass(rules.OrderState, StrEnum)
    assert [s.value for s in recharge.OrderState] == ["WAITING_FOR_PAYMENT", "SUCCESSFUL_PAYMENT", "FAILURE_TO_PAY"]
    assert [s.value for s in merchant.OrderState] == ["processing", "success", "failed", "refunded"]
    from server.payments.channels import RefundState

    assert issubclass(RefundState, StrEnum)  # refunds.state, shared by every area's refunds
    assert [s.value for s in RefundState] == ["pending", "succeeded", "processing", "failed", "abnormal", "not_found"]
    iap = tree / "server" / "membership" / "iap.py"
    iap.write_text(iap.read_text().replace("DomainError(Refusal.NOT_IAP_ORDER", 'DomainError("NOT_IAP_ORDER"', 1))
    assert [v.split(": ")[1] for v in literal_reasons(tree)] == ["NOT_IAP_ORDER"]


def foreign_private_assignments(root: Path) -> list[str]:
    """Assignments onto another object's private attribute (`x._y = ...`, `self._sdk._y = ...`):
    configuring a third-party object behind its back."""
    found = []
    for f in sorted((root / "server").rglob("*.py")):
        for line, text in attribute_assignments(f):
            parts = text.split(".")
            foreign = parts[2:] if parts[0] in ("self", "cls") else parts[1:]  # past our own attributes
            if any(part.startswith("_") for part in foreign):
                found.append(f"{f.relative_to(root)}:{line}: {text}")
    return found


def test_no_assignment_onto_a_third_party_objects_private_attributes(tree):
    """Each provider SDK is configured through a supported mechanism: the Alipay SDK gets its
    timeout through its config object and its gateway from our own subclass (payments/alipay.py),
    WeChat Pay's and the App Store's API hosts likewise (payments/wechatpay.py, appstore.py),
    never by assignment onto their private attributes. No allow-list: none is left."""
    assert foreign_private_assignments(ROOT) == []
    alipay = tree / "server" / "payments" / "alipay.py"
    alipay.write_text(alipay.read_text() + "\n\ndef configure(sdk):\n    sdk._config.timeout = 3\n")
    wechat = tree / "server" / "payments" / "wechatpay.py"
    wechat.write_text(wechat.read_text() + "\n\ndef configure(channel):\n    channel._sdk._core._gate_way = 'x'\n")
    assert [v.split(": ")[1] for v in foreign_private_assignments(tree)] == ["sdk._config.timeout",
                                                                            "channel._sdk._core._gate_way"]


MAX_CLASS_LINES, MAX_MODULE_LINES = 250, 400


def oversized(root: Path) -> list[str]:
    """Classes of 250 lines or more, and modules over 400 lines whose docstring does not
    say why in its first lines (a line starting "Size:")."""
    import ast

    found = []
    for f in sorted((root / "server").rglob("*.py")):
        source = f.read_text()
        module = ast.parse(source)
        for node in ast.walk(module):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 >= MAX_CLASS_LINES:
                found.append(f"{f.relative_to(root)}:{node.lineno}: class {node.name}, "
                             f"{node.end_lineno - node.lineno + 1} lines")
        lines = len(source.splitlines())
        head = (ast.get_docstring(module) or "").splitlines()[:5]
        if lines > MAX_MODULE_LINES and not any(line.startswith("Size:") for line in head):
            found.append(f"{f.relative_to(root)}: {lines} lines, no reason given")
    return found


def test_classes_and_modules_stay_small_or_say_why(tree):
    """Small modules whose names say what they hold (issue 16): every class in server/ is
    under 250 lines; a module over ~400 lines states why at its top ("Size: ...")."""
    assert oversized(ROOT) == []
    settlement = tree / "server" / "payments" / "settlement.py"
    big = "\n\nclass Big:\n" + "".join(f"    x{i} = {i}\n" for i in range(MAX_CLASS_LINES - 1))
    settlement.write_text(settlement.read_text() + big)
    assert [v.split(": ", 1)[1] for v in oversized(tree)] == [
        f"class Big, {MAX_CLASS_LINES} lines", f"{len(settlement.read_text().splitlines())} lines, no reason given"]
    text = settlement.read_text()
    settlement.write_text(text.replace('"""', '"""Size: a deliberate test of the rule.\n\n', 1))
    assert [v.split(": ", 1)[1] for v in oversized(tree)] == [f"class Big, {MAX_CLASS_LINES} lines"]
