"""The providers' daily statements, parsed exactly (pure: bytes in, lines out).

- Alipay trade bill (`alipay.data.dataservice.bill.downloadurl.query`, bill_type=trade):
  a zip of GBK CSV files; the detail file (`…_业务明细.csv`) has `#` comment lines
  around the table, values padded with tabs, refunds as negative amounts; the
  `…(汇总).csv` file is the day's summary (not needed line by line).
- WeChat Pay v3 trade bill (`/v3/bill/tradebill`, bill_type=ALL) and fund-flow bill
  (`/v3/bill/fundflowbill`): UTF-8 CSV, every value prefixed with a back quote, the last
  two lines a summary header and its values.

Anything that does not parse exactly (unknown header, wrong column count, an amount
with more decimals than the provider writes) raises StatementError: the whole file is
refused, so a run never applies half a statement."""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

PAYMENT, REFUND = "payment", "refund"
MAX_FILE_BYTES = 256 * 1024 * 1024  # a day's statement beyond this is refused, not buffered


class StatementError(Exception):
    """The statement could not be downloaded, verified or parsed (the run fails and is retried)."""


@dataclass(frozen=True)
class StatementLine:
    """One payment or refund as the provider states it. Amounts in fen, positive."""

    kind: str  # PAYMENT | REFUND
    trade_no: str  # our order number (out_trade_no)
    amount_fen: int  # the payment / this refund
    provider_txn_id: str = ""
    refund_no: str = ""  # REFUND: our refund number, or the provider's for a console refund
    provider_refund_id: str = ""
    state: str = "SUCCESS"  # REFUND (WeChat): SUCCESS | PROCESSING | ABNORMAL | CLOSED
    fee_fen: int = 0  # the provider's fee for this line (charged > 0, given back < 0)
    time: str = ""


@dataclass
class Statement:
    channel: str
    business_date: str
    lines: list[StatementLine] = field(default_factory=list)
    totals: dict = field(default_factory=dict)  # the provider's own summary figures (fen)


def amount_fen(text: str, places: int = 2) -> int:
    """Yuan text with at most `places` decimals to fen; a fraction of a fen (WeChat
    fees have 5 decimals) rounds half up."""
    text = text.strip().lstrip("`").strip()
    try:
        value = Decimal(text or "0")
    except InvalidOperation as exc:
        raise StatementError(f"not an amount: {text!r}") from exc
    if not value.is_finite() or value.adjusted() > 15 or -value.as_tuple().exponent > places:
        raise StatementError(f"not an amount: {text!r}")
    return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _rows(text: str) -> list[list[str]]:
    try:
        return [row for row in csv.reader(io.StringIO(text)) if row and any(c.strip() for c in row)]
    except csv.Error as exc:
        raise StatementError(f"bad CSV: {exc}") from exc


def _table(rows: list[list[str]], header_start: str) -> tuple[list[str], list[list[str]]]:
    for i, row in enumerate(rows):
        if row[0].strip() == header_start:
            return [c.strip() for c in row], rows[i + 1:]
    raise StatementError(f"no header starting with {header_start!r}")


def _check_width(header: list[str], row: list[str], where: str) -> dict[str, str]:
    if len(row) != len(header):
        raise StatementError(f"{where}: {len(row)} columns, the header has {len(header)}")
    return {h: v.strip().lstrip("`").strip() for h, v in zip(header, row)}


# ---------------------------------------------------------------- Alipay ----

ALIPAY_HEADER = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
                 "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,"
                 "券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注").split(",")
ALIPAY_TYPES = {"交易": PAYMENT, "退款": REFUND}
ALIPAY_AMOUNTS = [h for h in ALIPAY_HEADER if h.endswith("（元）")]


def parse_alipay_zip(data: bytes, business_date: str) -> Statement:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise StatementError(f"not a zip: {exc}") from exc
    details = [n for n in names if _zip_name(archive, n).endswith("_业务明细.csv")]
    if len(details) != 1:
        raise StatementError(f"expected one 业务明细 file, found {len(details)} in {names}")
    info = archive.getinfo(details[0])
    if info.file_size > MAX_FILE_BYTES:
        raise StatementError("detail file too large")
    try:
        text = archive.read(info).decode("gbk")
    except (UnicodeDecodeError, zipfile.BadZipFile, OSError) as exc:
        raise StatementError(f"detail file unreadable as GBK: {exc}") from exc
    return parse_alipay_detail(text, business_date)


def _zip_name(archive: zipfile.ZipFile, name: str) -> str:
    """Alipay's zip names are GBK without the UTF-8 flag: zipfile decoded them as cp437."""
    info = archive.getinfo(name)
    if info.flag_bits & 0x800:
        return name
    try:
        return name.encode("cp437").decode("gbk")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return name


def parse_alipay_detail(text: str, business_date: str) -> Statement:
    body = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    header, rows = _table(_rows("\n".join(body)), ALIPAY_HEADER[0])
    if header != ALIPAY_HEADER:
        raise StatementError("unexpected Alipay detail header")
    statement = Statement("alipay", business_date)
    for n, row in enumerate(rows, 1):
        v = _check_width(header, row, f"alipay line {n}")
        kind = ALIPAY_TYPES.get(v["业务类型"])
        if kind is None:
            raise StatementError(f"alipay line {n}: unknown 业务类型 {v['业务类型']!r}")
        amount = amount_fen(v["订单金额（元）"])
        for column in ALIPAY_AMOUNTS:  # every money column must parse, not only the ones used
            amount_fen(v[column])
        if (kind == PAYMENT) != (amount >= 0):
            raise StatementError(f"alipay line {n}: amount sign does not fit {v['业务类型']}")
        if not v["商户订单号"]:
            raise StatementError(f"alipay line {n}: no 商户订单号")
        statement.lines.append(StatementLine(
            kind, v["商户订单号"], abs(amount), provider_txn_id=v["支付宝交易号"],
            refund_no=v["退款批次号/请求号"] if kind == REFUND else "",
            fee_fen=-amount_fen(v["服务费（元）"]), time=v["完成时间"]))
    return statement


# ------------------------------------------------------------ WeChat Pay ----

WECHAT_TRADE_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
                       "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
                       "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注").split(",")
WECHAT_TRADE_SUMMARY = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额".split(",")
WECHAT_AMOUNTS = ("应结订单金额", "代金券金额", "退款金额", "充值券退款金额", "订单金额", "申请退款金额")
WECHAT_FUND_HEADER_START = "记账时间"
WECHAT_FUND_SUMMARY_START = "资金流水总笔数"


def gunzip_if_needed(data: bytes) -> bytes:
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            out = f.read(MAX_FILE_BYTES + 1)
    except (OSError, EOFError) as exc:
        raise StatementError(f"bad gzip: {exc}") from exc
    if len(out) > MAX_FILE_BYTES:
        raise StatementError("statement too large")
    return out


def _split_summary(rows: list[list[str]], start: str, where: str) -> tuple[list[list[str]], dict[str, str]]:
    for i, row in enumerate(rows):
        if row[0].strip() == start:
            if len(rows) != i + 2:
                raise StatementError(f"{where}: the summary must be the last two lines")
            header = [c.strip() for c in row]
            return rows[:i], _check_width(header, rows[i + 1], f"{where} summary")
    raise StatementError(f"{where}: no summary line")


def parse_wechat_tradebill(data: bytes, business_date: str) -> Statement:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise StatementError(f"trade bill is not UTF-8: {exc}") from exc
    header, rest = _table(_rows(text), WECHAT_TRADE_HEADER[0])
    if header != WECHAT_TRADE_HEADER:
        raise StatementError("unexpected WeChat Pay trade bill header")
    rows, summary = _split_summary(rest, WECHAT_TRADE_SUMMARY[0], "wechat trade bill")
    statement = Statement("wechat", business_date)
    for n, row in enumerate(rows, 1):
        v = _check_width(header, row, f"wechat trade line {n}")
        state, fee = v["交易状态"], amount_fen(v["手续费"], places=5)
        for column in WECHAT_AMOUNTS:  # every money column must parse, not only the ones used
            amount_fen(v[column])
        if not v["商户订单号"]:
            raise StatementError(f"wechat trade line {n}: no 商户订单号")
        if state == "SUCCESS":
            statement.lines.append(StatementLine(PAYMENT, v["商户订单号"], amount_fen(v["订单金额"]),
                                                 provider_txn_id=v["微信订单号"], fee_fen=fee, time=v["交易时间"]))
        elif state == "REFUND":
            statement.lines.append(StatementLine(
                REFUND, v["商户订单号"], amount_fen(v["申请退款金额"]), provider_txn_id=v["微信订单号"],
                refund_no=v["商户退款单号"], provider_refund_id=v["微信退款单号"], state=v["退款状态"] or "SUCCESS",
                fee_fen=fee, time=v["交易时间"]))
        elif state not in ("REVOKED", "CLOSED", "NOTPAY", "USERPAYING", "PAYERROR"):
            raise StatementError(f"wechat trade line {n}: unknown 交易状态 {state!r}")
    if int(summary["总交易单数"] or 0) != len(rows):
        raise StatementError(f"wechat trade bill: summary says {summary['总交易单数']} lines, found {len(rows)}")
    statement.totals = {"lines": len(rows), "fees_fen": amount_fen(summary["手续费总金额"], places=5),
                        "settled_fen": amount_fen(summary["应结订单总金额"]),
                        "refunded_fen": amount_fen(summary["退款总金额"])}
    return statement


def parse_wechat_fundflow(data: bytes) -> dict:
    """The fund-flow bill's summary (income / expense) after checking every line parses."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise StatementError(f"fund-flow bill is not UTF-8: {exc}") from exc
    header, rest = _table(_rows(text), WECHAT_FUND_HEADER_START)
    rows, summary = _split_summary(rest, WECHAT_FUND_SUMMARY_START, "wechat fund-flow bill")
    income = expense = 0
    for n, row in enumerate(rows, 1):
        v = _check_width(header, row, f"wechat fund-flow line {n}")
        amount = amount_fen(v["收支金额(元)"] if "收支金额(元)" in v else v["收支金额（元）"])
        if v["收支类型"] == "收入":
            income += amount
        elif v["收支类型"] == "支出":
            expense += amount
        else:
            raise StatementError(f"wechat fund-flow line {n}: unknown 收支类型 {v['收支类型']!r}")
    if int(summary["资金流水总笔数"] or 0) != len(rows):
        raise StatementError("wechat fund-flow bill: line count differs from its summary")
    if amount_fen(summary["收入金额"]) != income or amount_fen(summary["支出金额"]) != expense:
        raise StatementError("wechat fund-flow bill: totals differ from its summary")
    return {"fund_lines": len(rows), "fund_income_fen": income, "fund_expense_fen": expense}
