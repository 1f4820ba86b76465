// One order of any family (ConsoleService.GetOrderDetail): payment-channel data, every
// provider statement it received, what it granted or credited, refunds, merchant callbacks,
// the user's membership, its audit entries; and the actions refund, re-query the provider,
// close an unpaid order (each with a reason; the server decides who may).
import { Alert, Button, Group, Stack, Table, TextInput, Textarea, Title } from "@mantine/core";
import { useEffect, useState } from "react";
import { consoleReads, describe, membership, refunds, when } from "../api";
import type { GetOrderDetailResponse, OrderActionResult, OrderSummary } from "../gen/vipay/console/v1/console_pb";
import type { LevelTerm } from "../gen/vipay/membership/v1/membership_pb";
import { useT, type Key } from "../i18n";
import { AuditTable } from "./Audit";

/** An amount as the order's family renders it (001: integer fen, the others yuan), with its unit. */
export function money(display: string, family: string): string {
  return `${display} ${family === "001" ? "分" : "元"}`;
}

function Section({ title, testId, heads, rows }: { title: Key; testId: string; heads: Key[]; rows: React.ReactNode[][] }) {
  const t = useT();
  if (rows.length === 0) return null;
  return (
    <>
      <Title order={3} size="h5">{t(title)}</Title>
      <Table striped withTableBorder data-testid={testId}>
        <Table.Thead><Table.Tr>{heads.map((h) => <Table.Th key={h}>{t(h)}</Table.Th>)}</Table.Tr></Table.Thead>
        <Table.Tbody>
          {rows.map((cells, i) => <Table.Tr key={i}>{cells.map((c, j) => <Table.Td key={j}>{c}</Table.Td>)}</Table.Tr>)}
        </Table.Tbody>
      </Table>
    </>
  );
}

export function OrderDetail({ order }: { order: OrderSummary }) {
  const t = useT();
  const [detail, setDetail] = useState<GetOrderDetailResponse | null>(null);
  const [terms, setTerms] = useState<LevelTerm[]>([]);
  const [amount, setAmount] = useState("");
  const [reason, setReason] = useState("");
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [version, setVersion] = useState(0);
  useEffect(() => {
    consoleReads.getOrderDetail({ orderNumber: order.orderNumber }).then(setDetail).catch((e) => setMessage({ ok: false, text: describe(e) }));
    if (order.userId) membership.getMembershipStatus({ userId: order.userId }).then((r) => setTerms(r.levels)).catch(() => setTerms([]));
  }, [order, version]);
  const shown = detail?.order ?? order;
  const family = shown.family;
  const act = async (run: () => Promise<string>) => {
    setMessage(null);
    try {
      setMessage({ ok: true, text: await run() });
    } catch (err) {
      setMessage({ ok: false, text: describe(err) });
    }
    setVersion((v) => v + 1);
  };
  const outcome = (r?: OrderActionResult) => r
    ? `${t("action_done")}: ${r.stateBefore} → ${r.stateAfter}; ${t("provider_answer")}: ${r.providerAnswer || "—"}${r.settled ? `; ${t("settled_now")}` : ""}`
    : "";
  const refund = () => act(async () => {
    const fen = amount.trim() ? Math.round(Number(amount) * 100) : 0;
    if (Number.isNaN(fen) || fen < 0) throw new Error(t("refund_amount"));
    const answer = await refunds.refundOrder({ orderNumber: order.orderNumber, amountFen: BigInt(fen), reason });
    return `${t("refund_done")}: ${answer.refund?.refundId} (${answer.refund?.state})`;
  });
  const requery = () => act(async () => outcome((await consoleReads.requeryOrder({ orderNumber: order.orderNumber, reason })).result));
  const close = () => act(async () => outcome((await consoleReads.closeOrder({ orderNumber: order.orderNumber, reason })).result));
  return (
    <Stack>
      <Table data-testid="order-detail">
        <Table.Tbody>
          <Table.Tr><Table.Th>{t("family")}</Table.Th><Table.Td>{family}</Table.Td></Table.Tr>
          <Table.Tr><Table.Th>{t("user_id")}</Table.Th><Table.Td>{String(shown.userId)}</Table.Td></Table.Tr>
          <Table.Tr><Table.Th>{t("amount")}</Table.Th><Table.Td>{money(shown.amountDisplay, family)} ({String(shown.amountFen)} fen)</Table.Td></Table.Tr>
          <Table.Tr><Table.Th>{t("channel")}</Table.Th><Table.Td>{shown.channel}</Table.Td></Table.Tr>
          <Table.Tr><Table.Th>{t("state")}</Table.Th><Table.Td data-testid="order-state">{shown.state}</Table.Td></Table.Tr>
          <Table.Tr><Table.Th>{t("paid")}</Table.Th><Table.Td>{when(shown.paidTime)}</Table.Td></Table.Tr>
        </Table.Tbody>
      </Table>
      {detail && <>
        <Section title="payment_data" testId="payment-data" heads={["field", "value"]}
          rows={detail.paymentFields.filter((f) => f.value).map((f) => [f.name, f.value])} />
        <Section title="notifications" testId="notifications" heads={["source", "channel", "txn_id", "amount", "says", "outcome", "received"]}
          rows={detail.notifications.map((n) => [n.source, n.channel, n.providerTxnId, money(n.amountDisplay, family),
            n.paid ? "paid" : n.closed ? "closed" : "not paid", n.outcome, when(n.receiveTime)])} />
        <Section title="grants" testId="grants" heads={["level", "cause", "expiry_before", "expiry_after", "when"]}
          rows={detail.grants.map((g) => [g.level, `${g.source} ${g.sourceRef}`, when(g.previousExpireTime), when(g.expireTime), when(g.createTime)])} />
        <Section title="wallet_entries" testId="wallet-entries" heads={["cause", "amount", "balance_after_fen", "reference", "when"]}
          rows={detail.walletEntries.map((e) => [e.reason, money(e.amountDisplay, family), String(e.balanceAfterFen), e.reference, when(e.createTime)])} />
        <Section title="merchant_balance" testId="merchant-balance" heads={["cause", "amount", "balance_after_fen", "reference", "when"]}
          rows={detail.merchantBalanceEntries.map((e) => [e.kind, money(e.amountDisplay, family), String(e.balanceAfterFen), e.note, when(e.createTime)])} />
        <Section title="deliveries" testId="callbacks" heads={["callback_url", "state", "attempts", "outcome", "when"]}
          rows={detail.callbacks.map((c) => [c.url, c.state, String(c.attempts), c.lastError, when(c.deliverTime ?? c.createTime)])} />
      </>}
      <Title order={3} size="h5">{t("membership")}</Title>
      <Table data-testid="membership">
        <Table.Thead><Table.Tr><Table.Th>level</Table.Th><Table.Th>{t("expires")}</Table.Th><Table.Th>active</Table.Th></Table.Tr></Table.Thead>
        <Table.Tbody>
          {terms.map((l) => (
            <Table.Tr key={l.level}><Table.Td>{l.level}</Table.Td><Table.Td data-testid={`expiry-${l.level}`}>{when(l.expireTime)}</Table.Td><Table.Td>{String(l.active)}</Table.Td></Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <Title order={3} size="h5">{t("refunds")}</Title>
      <Table data-testid="refunds">
        <Table.Tbody>
          {(detail?.refunds ?? []).map((r) => (
            <Table.Tr key={r.refundNo}><Table.Td>{r.refundNo}</Table.Td><Table.Td>{money(r.amountDisplay, family)}</Table.Td><Table.Td>{r.state}</Table.Td><Table.Td>{r.reason}</Table.Td></Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <Title order={3} size="h5">{t("actions")}</Title>
      <Textarea label={t("reason")} value={reason} onChange={(e) => setReason(e.currentTarget.value)} required />
      <TextInput label={t("refund_amount")} value={amount} onChange={(e) => setAmount(e.currentTarget.value)} inputMode="decimal" />
      {message && <Alert color={message.ok ? "green" : "red"} role="alert">{message.text}</Alert>}
      <Group>
        <Button onClick={() => void refund()} disabled={!reason.trim()} color="red.9">{t("refund")}</Button>
        {detail?.canRequery && <Button onClick={() => void requery()} disabled={!reason.trim()} variant="outline">{t("requery")}</Button>}
        {detail?.canClose && <Button onClick={() => void close()} disabled={!reason.trim()} color="orange.9">{t("close_order")}</Button>}
      </Group>
      <Title order={3} size="h5">{t("nav_audit")}</Title>
      <AuditTable key={version} target={order.orderNumber} />
    </Stack>
  );
}
