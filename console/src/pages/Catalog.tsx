// VIP catalog (api-docs/001): edit the document GET /api/v2/vip/configs serves, preview
// its exact JSON, save with a reason (UpdateVipCatalog, audited), history and rollback
// from the audit log's before-documents.
import { Alert, Button, Code, Grid, Group, NumberInput, Paper, Stack, Switch, Table, TextInput, Textarea, Title } from "@mantine/core";
import { fromJson, toJson, type JsonObject } from "@bufbuild/protobuf";
import { useEffect, useState } from "react";
import { describe, membership } from "../api";
import { GetVipConfigsResponseSchema, UpdateVipCatalogRequestSchema } from "../gen/vipay/membership/v1/membership_pb";
import { useT } from "../i18n";
import { AuditTable } from "./Audit";

type Setting = { duration: number; original: number; iap: string | null; iap_price: number; price: number; enable: boolean; currency?: number };
type Level = { enable: boolean; level: string; name: string; setting: Setting[] };
type Doc = { switch: boolean; exchange: number; config: Record<string, Level> };
const LEVELS = ["low", "middle", "high"];

export function CatalogPage() {
  const t = useT();
  const [doc, setDoc] = useState<Doc | null>(null);
  const [reason, setReason] = useState("");
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [historyKey, setHistoryKey] = useState(0);

  const load = async () => {
    const served = await membership.getVipConfigs({});
    setDoc(toJson(GetVipConfigsResponseSchema, served, { alwaysEmitImplicit: true }) as unknown as Doc);
  };
  useEffect(() => { void load(); }, []);

  const save = async (next: Doc, why: string) => {
    setMessage(null);
    try {
      const request = fromJson(UpdateVipCatalogRequestSchema, { ...(next as unknown as JsonObject), reason: why });
      const answer = await membership.updateVipCatalog(request);
      setMessage({ ok: true, text: `${t("saved")} ${answer.version}` });
      setHistoryKey((k) => k + 1);
      await load();
    } catch (err) {
      setMessage({ ok: false, text: describe(err) });
    }
  };

  if (!doc) return null;
  const set = (level: string, i: number, field: keyof Setting, value: unknown) => {
    const next: Doc = structuredClone(doc);
    (next.config[level].setting[i] as Record<string, unknown>)[field] = value;
    setDoc(next);
  };
  const invalid = LEVELS.flatMap((l) => doc.config[l].setting.map((s) => s.price <= 0 || s.original < 0 || s.iap_price < 0)).some(Boolean)
    || doc.exchange < 1;
  return (
    <Stack>
      <Title order={2}>{t("nav_catalog")}</Title>
      <Grid>
        <Grid.Col span={{ base: 12, lg: 7 }}>
          <Stack>
            <Group>
              <Switch label={t("vip_switch")} checked={doc.switch} onChange={(e) => setDoc({ ...doc, switch: e.currentTarget.checked })} />
              <NumberInput label={t("exchange")} value={doc.exchange} min={1} allowDecimal={false}
                onChange={(v) => setDoc({ ...doc, exchange: Number(v) })} w={160} />
            </Group>
            {LEVELS.map((level) => (
              <Paper withBorder p="sm" key={level}>
                <Group mb="xs">
                  <TextInput label={`${level} · ${t("level_name")}`} value={doc.config[level].name}
                    onChange={(e) => { const n = structuredClone(doc); n.config[level].name = e.currentTarget.value; setDoc(n); }} />
                  <Switch label={t("level_enable")} checked={doc.config[level].enable}
                    onChange={(e) => { const n = structuredClone(doc); n.config[level].enable = e.currentTarget.checked; setDoc(n); }} />
                </Group>
                <Table>
                  <Table.Thead><Table.Tr>
                    <Table.Th>{t("duration")}</Table.Th><Table.Th>{t("price")}</Table.Th><Table.Th>{t("original")}</Table.Th>
                    <Table.Th>{t("iap_price")}</Table.Th><Table.Th>{t("iap")}</Table.Th><Table.Th>{t("level_enable")}</Table.Th>
                  </Table.Tr></Table.Thead>
                  <Table.Tbody>
                    {doc.config[level].setting.map((s, i) => (
                      <Table.Tr key={s.duration}>
                        <Table.Td>{s.duration}</Table.Td>
                        <Table.Td><NumberInput aria-label={`${level} ${s.duration} ${t("price")}`} value={s.price} min={0.01} decimalScale={2}
                          error={s.price <= 0 ? "> 0" : undefined} onChange={(v) => set(level, i, "price", Number(v))} /></Table.Td>
                        <Table.Td><NumberInput aria-label={`${level} ${s.duration} ${t("original")}`} value={s.original} min={0} decimalScale={2}
                          onChange={(v) => set(level, i, "original", Number(v))} /></Table.Td>
                        <Table.Td><NumberInput aria-label={`${level} ${s.duration} ${t("iap_price")}`} value={s.iap_price} min={0} decimalScale={2}
                          onChange={(v) => set(level, i, "iap_price", Number(v))} /></Table.Td>
                        <Table.Td><TextInput aria-label={`${level} ${s.duration} ${t("iap")}`} value={s.iap ?? ""}
                          onChange={(e) => set(level, i, "iap", e.currentTarget.value || null)} /></Table.Td>
                        <Table.Td><Switch aria-label={`${level} ${s.duration} ${t("level_enable")}`} checked={s.enable}
                          onChange={(e) => set(level, i, "enable", e.currentTarget.checked)} /></Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              </Paper>
            ))}
            <Textarea label={t("reason")} value={reason} onChange={(e) => setReason(e.currentTarget.value)} required />
            {message && <Alert color={message.ok ? "green" : "red"} role={message.ok ? "status" : "alert"}>{message.text}</Alert>}
            <Group><Button onClick={() => void save(doc, reason)} disabled={invalid || !reason.trim()}>{t("save")}</Button></Group>
          </Stack>
        </Grid.Col>
        <Grid.Col span={{ base: 12, lg: 5 }}>
          <Title order={3} size="h5">{t("preview")}</Title>
          <Code block data-testid="preview">{JSON.stringify(doc, null, 2)}</Code>
        </Grid.Col>
      </Grid>
      <Title order={3}>{t("history")}</Title>
      <AuditTable key={historyKey} action="vip_catalog.update" onPick={(e) => e.beforeJson && (
        <Button size="xs" variant="light" onClick={() => void save(JSON.parse(e.beforeJson) as Doc, `${t("rollback")} #${e.id}`)}>
          {t("rollback")} #{String(e.id)}
        </Button>
      )} />
    </Stack>
  );
}
