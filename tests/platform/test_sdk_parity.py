"""The three SDKs (sdk/typescript, sdk/go, sdk/python) offer the same public HTTP operations:
every operation of sdk/openapi.yaml a partner's code calls has a method in each, and each
list call its page iterator. A new operation in the spec fails this until all three have it
(or it is listed below, with the reason)."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

# Called by payment providers or operators' probes, not by a partner's code.
NOT_FOR_PARTNERS = {"notifications", "diagnostics"}
# The captcha is an image a person reads in the app when 002 asks for it; no SDK wraps it.
LEFT_OUT = {"GetRechargeCaptcha"}
# The SDKs' name where it is not the operationId's.
RENAMED = {"QueryBalance": "Balance"}
# List call -> the iterator over every page (Go's Each… calls a function per item).
ITERATORS = {"ListVipOrders": ("vipOrders", "EachVipOrder", "vip_orders"),
             "GetRechargeHistory": ("rechargeHistory", "EachRechargeRecord", "recharge_history")}


def sources(pattern: str) -> str:
    return "\n".join(p.read_text() for p in sorted(ROOT.glob(pattern)) if not p.name.endswith("_test.go"))


def names(operation: str) -> tuple[str, str, str]:
    """Its method in TypeScript, Go and Python."""
    go = RENAMED.get(operation, operation)
    return go[0].lower() + go[1:], go, re.sub(r"(?<!^)(?=[A-Z])", "_", go).lower()


PATTERNS = {  # language -> (its sources, a method definition named {})
    "typescript": ("sdk/typescript/src/*.ts", r"^\s+(async \*)?{}\("),
    "go": ("sdk/go/*.go", r"^func \(\w+ \*\w+\) {}\("),
    "python": ("sdk/python/src/vipay_sdk/*.py", r"^\s+def {}\("),
}


def has(language: str, name: str) -> bool:
    files, definition = PATTERNS[language]
    return re.search(definition.format(re.escape(name)), sources(files), re.M) is not None


def partner_operations() -> list[str]:
    spec = yaml.safe_load((ROOT / "sdk/openapi.yaml").read_text())
    return sorted(op["operationId"] for ops in spec["paths"].values() for op in ops.values()
                  if not NOT_FOR_PARTNERS & set(op["tags"]) and op["operationId"] not in LEFT_OUT)


def missing() -> list[str]:
    wanted = [(operation, names(operation)) for operation in partner_operations()]
    wanted += [(f"{operation} iterator", iterators) for operation, iterators in ITERATORS.items()]
    return [f"{language}: {operation} ({name})" for operation, per_language in wanted
            for language, name in zip(PATTERNS, per_language) if not has(language, name)]


def test_every_sdk_covers_the_same_public_operations():
    # 001: 11, 000: 2, 002: 3 (the captcha left out), 003: 1, 004: 3.
    assert len(partner_operations()) == 20
    assert missing() == []
