// Health: today's orders, revenue and refunds per family, the merchant callback
// backlog, database readiness (ConsoleService.GetHealth) and the ledger check on demand.
import { Alert, Button, Code, Group, Stack, Table, Text, Title } from "@mantine/core";
import { useEffect, useState } from "react";
import { consoleReads, describe } from "../api";
import type { GetHealthResponse, RunLedgerCheckResponse } from "../gen/vipay/console/v1/console_pb";
import { useT } from "../i18n";

export function HealthPage() {
  const t = useT();
  const [health, setHealth] = useState<GetHealthResponse | null>(null);
  const [check, setCheck] = useState<RunLedgerCheckResponse | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    consoleReads.getHealth({ timeZone: "Asia/Shanghai" }).then(setHealth).catch((e) => setError(describe(e)));
  }, []);
  return (
    <Stack>
      <Title order={2}>{t("nav_health")}</Title>
      {error && <Alert color="red">{error}</Alert>}
      {health && (
        <>
          <Text data-testid="database">{t("database")}: {health.databaseReady ? t("ready") : health.databaseError}</Text>
          <Text data-testid="backlog">{t("backlog")}: {String(health.callbackBacklog)} · {t("oldest")}: {health.oldestPendingCallbackSeconds.toFixed(0)}</Text>
          <Title order={3}>{t("today")}</Title>
          <Table withTableBorder data-testid="health-table">
            <Table.Thead><Table.Tr>
              <Table.Th>{t("family")}</Table.Th><Table.Th>{t("nav_orders")}</Table.Th><Table.Th>{t("paid_orders")}</Table.Th>
              <Table.Th>{t("revenue")}</Table.Th><Table.Th>{t("refunded")}</Table.Th>
            </Table.Tr></Table.Thead>
            <Table.Tbody>
              {health.families.map((f) => (
                <Table.Tr key={f.family}><Table.Td>{f.family}</Table.Td><Table.Td>{String(f.orders)}</Table.Td>
                  <Table.Td>{String(f.paidOrders)}</Table.Td><Table.Td>{f.revenueDisplay}{f.family === "001" ? " 分" : " 元"}</Table.Td>
                  <Table.Td>{String(f.refundedFen)}</Table.Td></Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </>
      )}
      <Group>
        <Button onClick={() => { setCheck(null); consoleReads.runLedgerCheck({}).then(setCheck).catch((e) => setError(describe(e))); }}>{t("ledger_check")}</Button>
      </Group>
      {check && (check.ok ? <Alert color="green" data-testid="ledger">{t("ledger_ok")}</Alert>
        : <Alert color="red" data-testid="ledger"><Code block>{check.problems.join("\n")}</Code></Alert>)}
    </Stack>
  );
}
