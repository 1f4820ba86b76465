// Recharge plans (000 packages and VIP gifts, 002 amounts and pay modes, 003 plans,
// gifts and recharge-center settings): the catalog document, validated by the server
// (ConsoleService.UpdateRechargeCatalog, admin), audited, with history and rollback; beside
// it the exact JSON the public paths would serve for the draft (PreviewRechargeCatalog,
// rendered by the code that serves them), before anything is saved.
import { Alert, Button, Code, Grid, Group, JsonInput, Stack, Text, TextInput, Textarea, Title } from "@mantine/core";
import { useEffect, useState } from "react";
import { consoleReads, describe } from "../api";
import type { PreviewRechargeCatalogResponse } from "../gen/vipay/console/v1/console_pb";
import { useT } from "../i18n";
import { AuditTable } from "./Audit";

const PREVIEW_DELAY_MS = 300;
const pretty = (json: string) => JSON.stringify(JSON.parse(json), null, 2);

function Preview({ document, client }: { document: string; client: string }) {
  const t = useT();
  const [answer, setAnswer] = useState<PreviewRechargeCatalogResponse | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    if (!document) return;
    const timer = window.setTimeout(() => {
      consoleReads.previewRechargeCatalog({ documentJson: document, client })
        .then((r) => { setAnswer(r); setError(""); })
        .catch((err) => setError(describe(err)));
    }, PREVIEW_DELAY_MS);
    return () => window.clearTimeout(timer);
  }, [document, client]);
  const bodies: [string, string, string][] = answer ? [
    ["preview-002", "GET /api/recharge (002)", answer.rechargeJson],
    ["preview-000", "GET /charge/index (000)", answer.chargeIndexJson],
    ["preview-003", `GET /index.php?s=/api/recharge/center&client=${client || "H5"} (003) · ${t("preview_center_note")}`,
      answer.rechargeCenterJson],
  ] : [];
  return (
    <Stack data-testid="recharge-preview">
      <Title order={3} size="h5">{t("recharge_preview")}</Title>
      {error && <Text c="red.9" data-testid="preview-error">{error}</Text>}
      {bodies.map(([id, title, json]) => (
        <Stack key={id} gap={4}>
          <Text size="sm" fw={600}>{title}</Text>
          <Code block data-testid={id} tabIndex={0} role="region" aria-label={title} style={{ maxHeight: 360, overflow: "auto" }}>{pretty(json)}</Code>
        </Stack>
      ))}
    </Stack>
  );
}

export function RechargePage() {
  const t = useT();
  const [text, setText] = useState("");
  const [client, setClient] = useState("H5");
  const [reason, setReason] = useState("");
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [version, setVersion] = useState(0);
  const load = () => consoleReads.getRechargeCatalog({}).then((r) => setText(JSON.stringify(JSON.parse(r.documentJson), null, 2)));
  useEffect(() => { void load(); }, []);
  const save = async (document: string, why: string) => {
    setMessage(null);
    try {
      const answer = await consoleReads.updateRechargeCatalog({ documentJson: document, reason: why });
      setMessage({ ok: true, text: `${t("saved")} ${answer.version}` });
      setVersion((v) => v + 1);
      await load();
    } catch (err) {
      setMessage({ ok: false, text: describe(err) });
    }
  };
  return (
    <Stack>
      <Title order={2}>{t("nav_recharge")}</Title>
      <Grid>
        <Grid.Col span={{ base: 12, lg: 6 }}>
          <Stack>
            <JsonInput label={t("document")} value={text} onChange={setText} autosize minRows={12} maxRows={30} validationError="JSON" data-testid="recharge-document" />
            <Textarea label={t("reason")} value={reason} onChange={(e) => setReason(e.currentTarget.value)} required />
            {message && <Alert color={message.ok ? "green" : "red"}>{message.text}</Alert>}
            <Group><Button onClick={() => void save(text, reason)} disabled={!reason.trim()}>{t("save")}</Button></Group>
          </Stack>
        </Grid.Col>
        <Grid.Col span={{ base: 12, lg: 6 }}>
          <Stack>
            <TextInput label={t("preview_client")} value={client} onChange={(e) => setClient(e.currentTarget.value)} w={200} />
            <Preview document={text} client={client} />
          </Stack>
        </Grid.Col>
      </Grid>
      <Title order={3}>{t("history")}</Title>
      <AuditTable key={version} action="recharge_catalog.update" onPick={(e) => e.beforeJson && (
        <Button size="xs" variant="light" onClick={() => void save(e.beforeJson, `${t("rollback")} #${e.id}`)}>
          {t("rollback")} #{String(e.id)}
        </Button>
      )} />
    </Stack>
  );
}
