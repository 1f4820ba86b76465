import { Alert, Code, Group, Pagination, Stack, Table, Text, Title } from "@mantine/core";
import { useEffect, useState } from "react";
import { describe, operators } from "../api";
import type { AuditEntry } from "../gen/vipay/operators/v1/operators_pb";
import { useT } from "../i18n";

const PAGE_SIZE = 20;

/** Server-side paging: page N is the token of offset (N-1)*size, built like the server's. */
function tokenFor(page: number): string {
  return page <= 1 ? "" : btoa(`o:${(page - 1) * PAGE_SIZE}`).replace(/\+/g, "-").replace(/\//g, "_");
}

export function AuditTable({ action = "", target = "", onPick }: { action?: string; target?: string; onPick?: (e: AuditEntry) => React.ReactNode }) {
  const t = useT();
  const [page, setPage] = useState(1);
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState("");
  useEffect(() => {
    operators.listAuditEntries({ pageSize: PAGE_SIZE, pageToken: tokenFor(page), action, target })
      .then((r) => { setEntries(r.entries); setTotal(Number(r.totalSize)); setError(""); })
      .catch((err) => setError(describe(err)));
  }, [page, action, target]);
  return (
    <Stack>
      {error && <Alert color="red" role="alert">{error}</Alert>}
      <Table striped withTableBorder data-testid="audit-table">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>{t("audit_when")}</Table.Th><Table.Th>{t("audit_who")}</Table.Th>
            <Table.Th>{t("audit_action")}</Table.Th><Table.Th>{t("audit_target")}</Table.Th>
            <Table.Th>{t("audit_reason")}</Table.Th><Table.Th>{t("audit_change")}</Table.Th>
            {onPick && <Table.Th />}
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {entries.length === 0 && <Table.Tr><Table.Td colSpan={7}>{t("no_entries")}</Table.Td></Table.Tr>}
          {entries.map((e) => (
            <Table.Tr key={String(e.id)}>
              <Table.Td>{e.createTime ? new Date(Number(e.createTime.seconds) * 1000).toISOString().replace("T", " ").slice(0, 19) : ""}</Table.Td>
              <Table.Td>{e.operatorName} ({e.operatorRole})</Table.Td>
              <Table.Td>{e.action}</Table.Td>
              <Table.Td>{e.target}</Table.Td>
              <Table.Td>{e.reason}</Table.Td>
              <Table.Td><Change before={e.beforeJson} after={e.afterJson} /></Table.Td>
              {onPick && <Table.Td>{onPick(e)}</Table.Td>}
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <Group justify="space-between">
        <Text size="sm">{t("total")} {total}</Text>
        <Pagination total={Math.max(1, Math.ceil(total / PAGE_SIZE))} value={page} onChange={setPage}
          getControlProps={(control) => ({ "aria-label": control })} getItemProps={(p) => ({ "aria-label": `page ${p}` })} />
      </Group>
    </Stack>
  );
}

/** before -> after, only the keys that changed (nested paths flattened). */
function Change({ before, after }: { before: string; after: string }) {
  const flat = (text: string) => {
    const out: Record<string, string> = {};
    const walk = (v: unknown, path: string) => {
      if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
      else out[path] = JSON.stringify(v);
    };
    if (text) walk(JSON.parse(text), "");
    return out;
  };
  const a = flat(before), b = flat(after);
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => a[k] !== b[k]);
  return <Code block>{keys.slice(0, 12).map((k) => `${k}: ${a[k] ?? "∅"} → ${b[k] ?? "∅"}`).join("\n") || "—"}</Code>;
}

export function AuditPage() {
  const t = useT();
  return (
    <Stack>
      <Title order={2}>{t("nav_audit")}</Title>
      <AuditTable />
    </Stack>
  );
}
