"""The console shows an amount exactly as its family's JSON renders it, at any size."""

from __future__ import annotations

from server.console.health import FamilyDay
from server.console.orders import display


def test_large_amounts_are_never_shown_in_exponent_form():
    # 1,234,567.89 yuan: `:g` printed 1.23457e+06 (and lost the fen).
    assert display("000", 123456789) == "1234567.89"
    assert display("004", 123456700) == "1234567"
    assert display("001", 123456789) == "123456789"  # 001 renders integer fen
    assert display("003", 123456789) == "1234567.89"
    assert FamilyDay("004", 1, 1, 987654321, 0).revenue_display == "9876543.21"
