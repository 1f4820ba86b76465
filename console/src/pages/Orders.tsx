// Orders of every family: one search (ConsoleService.SearchOrders, paged and sorted by the
// server) and a detail panel (OrderDetail.tsx: everything about the order, refund,
// re-query, close; the server decides who may).
import { Alert, Button, Drawer, Group, Pagination, Select, Stack, Table, Text, TextInput, Title, UnstyledButton } from "@mantine/core";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { useEffect, useState } from "react";
import { consoleReads, describe, pageToken, when } from "../api";
import type { OrderSummary } from "../gen/vipay/console/v1/console_pb";
import { useT } from "../i18n";
import { money, OrderDetail } from "./OrderDetail";

const PAGE_SIZE = 20;
const FAMILIES = ["001", "000", "002", "003", "004"];
const STATES = ["unpaid", "paid", "closed", "failed", "processing"];

// A yyyy-mm-dd day of the operator's calendar -> the instant it starts (plus `days`): "from"
// is that day's start, "to" the next day's start (the RPC's bound is exclusive, the day is not).
function dayStart(day: string, days: number) {
  const [y, m, d] = day.split("-").map(Number);
  return y && m && d ? timestampFromDate(new Date(y, m - 1, d + days)) : undefined;
}

export function OrdersPage() {
  const t = useT();
  const [form, setForm] = useState({ orderNumber: "", userId: "", family: "", state: "", from: "", to: "" });
  const [query, setQuery] = useState(form);
  const [orderBy, setOrderBy] = useState("create_time desc");
  const [page, setPage] = useState(1);
  const [rows, setRows] = useState<OrderSummary[]>([]);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState("");
  const [open, setOpen] = useState<OrderSummary | null>(null);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    consoleReads.searchOrders({
      orderNumber: query.orderNumber.trim(), userId: BigInt(Number(query.userId) || 0), family: query.family,
      state: query.state, createTimeFrom: dayStart(query.from, 0), createTimeTo: dayStart(query.to, 1), orderBy, pageSize: PAGE_SIZE, pageToken: pageToken((page - 1) * PAGE_SIZE),
    }).then((r) => { setRows(r.orders); setTotal(Number(r.totalSize)); setError(""); })
      .catch((err) => setError(describe(err)));
  }, [query, orderBy, page, reload]);

  const sortBy = (column: "create_time" | "amount") =>
    setOrderBy(orderBy === `${column} desc` ? column : `${column} desc`);
  const arrow = (column: string) => (orderBy === column ? " ↑" : orderBy === `${column} desc` ? " ↓" : "");
  return (
    <Stack>
      <Title order={2}>{t("nav_orders")}</Title>
      <form onSubmit={(e) => { e.preventDefault(); setPage(1); setQuery(form); }}>
        <Group align="end">
          <TextInput label={t("order_number")} value={form.orderNumber} onChange={(e) => setForm({ ...form, orderNumber: e.currentTarget.value })} />
          <TextInput label={t("user_id")} value={form.userId} inputMode="numeric" onChange={(e) => setForm({ ...form, userId: e.currentTarget.value })} w={120} />
          <Select label={t("family")} data={[{ value: "", label: t("any") }, ...FAMILIES.map((f) => ({ value: f, label: f }))]}
            value={form.family} onChange={(v) => setForm({ ...form, family: v ?? "" })} w={120} />
          <Select label={t("state")} data={[{ value: "", label: t("any") }, ...STATES.map((s) => ({ value: s, label: s }))]}
            value={form.state} onChange={(v) => setForm({ ...form, state: v ?? "" })} w={140} />
          <TextInput type="date" label={t("created_from")} value={form.from} onChange={(e) => setForm({ ...form, from: e.currentTarget.value })} w={160} />
          <TextInput type="date" label={t("created_to")} value={form.to} onChange={(e) => setForm({ ...form, to: e.currentTarget.value })} w={160} />
          <Button type="submit">{t("search")}</Button>
        </Group>
      </form>
      {error && <Alert color="red">{error}</Alert>}
      <Text size="sm">{t("sort_hint")}</Text>
      <Table striped withTableBorder data-testid="orders-table">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>{t("order_number")}</Table.Th><Table.Th>{t("family")}</Table.Th><Table.Th>{t("user_id")}</Table.Th>
            <Table.Th aria-sort={orderBy.startsWith("amount") ? (orderBy.endsWith("desc") ? "descending" : "ascending") : undefined}>
              <UnstyledButton onClick={() => sortBy("amount")}>{t("amount")}{arrow("amount")}</UnstyledButton></Table.Th>
            <Table.Th>{t("channel")}</Table.Th><Table.Th>{t("state")}</Table.Th><Table.Th>{t("what")}</Table.Th>
            <Table.Th aria-sort={orderBy.startsWith("create_time") ? (orderBy.endsWith("desc") ? "descending" : "ascending") : undefined}>
              <UnstyledButton onClick={() => sortBy("create_time")}>{t("created")}{arrow("create_time")}</UnstyledButton></Table.Th>
            <Table.Th />
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.length === 0 && <Table.Tr><Table.Td colSpan={9}>{t("no_entries")}</Table.Td></Table.Tr>}
          {rows.map((o) => (
            <Table.Tr key={o.orderNumber}>
              <Table.Td>{o.orderNumber}</Table.Td><Table.Td>{o.family}</Table.Td><Table.Td>{String(o.userId)}</Table.Td>
              <Table.Td>{money(o.amountDisplay, o.family)}</Table.Td><Table.Td>{o.channel}</Table.Td>
              <Table.Td><Text fw={700} size="sm">{o.state}</Text></Table.Td>
              <Table.Td>{o.description}</Table.Td><Table.Td>{when(o.createTime)}</Table.Td>
              <Table.Td><Button size="xs" variant="light" onClick={() => setOpen(o)} aria-label={`${t("details")} ${o.orderNumber}`}>{t("details")}</Button></Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <Group justify="space-between">
        <Text size="sm">{t("total")} {total}</Text>
        <Pagination total={Math.max(1, Math.ceil(total / PAGE_SIZE))} value={page} onChange={setPage}
          getControlProps={(control) => ({ "aria-label": control })} getItemProps={(p) => ({ "aria-label": `page ${p}` })} />
      </Group>
      <Drawer opened={open !== null} onClose={() => { setOpen(null); setReload((r) => r + 1); }} position="right" size="xl"
        closeButtonProps={{ "aria-label": t("close") }}
        title={open ? `${t("details")} ${open.orderNumber}` : ""}>
        {open && <OrderDetail order={open} />}
      </Drawer>
    </Stack>
  );
}
