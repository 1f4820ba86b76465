// Recharge plans (000 packages and VIP gifts, 002 amounts and pay modes, 003 plans,
// gifts and recharge-center settings): the catalog document, validated by the server
// (ConsoleService.UpdateRechargeCatalog, admin), audited, with history and rollback.
import { Alert, Button, Group, JsonInput, Stack, Textarea, Title } from "@mantine/core";
import { useEffect, useState } from "react";
import { consoleReads, describe } from "../api";
import { useT } from "../i18n";
import { AuditTable } from "./Audit";

export function RechargePage() {
  const t = useT();
  const [text, setText] = useState("");
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
      <JsonInput label={t("document")} value={text} onChange={setText} autosize minRows={12} maxRows={30} validationError="JSON" data-testid="recharge-document" />
      <Textarea label={t("reason")} value={reason} onChange={(e) => setReason(e.currentTarget.value)} required />
      {message && <Alert color={message.ok ? "green" : "red"}>{message.text}</Alert>}
      <Group><Button onClick={() => void save(text, reason)} disabled={!reason.trim()}>{t("save")}</Button></Group>
      <Title order={3}>{t("history")}</Title>
      <AuditTable key={version} action="recharge_catalog.update" onPick={(e) => e.beforeJson && (
        <Button size="xs" variant="light" onClick={() => void save(e.beforeJson, `${t("rollback")} #${e.id}`)}>
          {t("rollback")} #{String(e.id)}
        </Button>
      )} />
    </Stack>
  );
}
