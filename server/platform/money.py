"""Money is integer fen inside. These render and parse it as each legacy family shows it."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MAX_YUAN_DIGITS = 15  # no amount has more than 16 digits of whole yuan


def yuan_number(fen: int) -> float:
    """001/000/004 JSON numbers: 5400 fen -> 54.0 (printed `54`), 990 -> 9.9."""
    return fen / 100


def yuan_string_trimmed(fen: int) -> str:
    """002 style: "15.2", "28", "25.8"."""
    text = f"{Decimal(fen) / 100:.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def yuan_string_2dp(fen: int) -> str:
    """003 style: "500.00"."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def parse_yuan(text: str | float | int) -> int:
    """Yuan (string or number) to fen; refuses more than two decimals."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not an amount: {text!r}")
    if value.adjusted() > MAX_YUAN_DIGITS:  # 1e30, 24 nines: beyond any amount and Decimal's precision
        raise ValueError(f"amount out of range: {text!r}")
    try:
        fen = value * 100
        if fen != fen.to_integral_value():
            raise ValueError(f"more than two decimals: {text!r}")
        return int(fen.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except ArithmeticError as exc:  # decimal.InvalidOperation / Overflow on extreme exponents
        raise ValueError(f"not an amount: {text!r}") from exc


def number_text(fen: int) -> str:
    """A yuan_number as proto3 JSON prints it (the shortest text that reads back the same
    double): 5400 -> "54", 990 -> "9.9", 123456789 -> "1234567.89" (`:g` would print 1.23457e+06)."""
    text = repr(yuan_number(fen))
    return text[:-2] if text.endswith(".0") else text
