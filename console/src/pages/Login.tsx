import { Alert, Button, Center, Group, Paper, PasswordInput, Stack, TextInput, Title } from "@mantine/core";
import { useState } from "react";
import { describe, login } from "../api";
import type { Operator } from "../gen/vipay/operators/v1/operators_pb";
import { useT } from "../i18n";

export function LoginPage({ onLogin, onLang }: { onLogin: (o: Operator) => void; onLang: () => void }) {
  const t = useT();
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      onLogin(await login(name, password, code));
    } catch (err) {
      setError(describe(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main>
      <Center mih="100vh">
        <Paper withBorder p="xl" w={380}>
          <form onSubmit={submit}>
            <Stack>
              <Group justify="space-between">
                <Title order={1} size="h3">{t("title")}</Title>
                <Button variant="subtle" onClick={onLang}>{t("language")}</Button>
              </Group>
              <TextInput label={t("name")} value={name} onChange={(e) => setName(e.currentTarget.value)} required autoFocus autoComplete="username" />
              <PasswordInput label={t("password")} value={password} onChange={(e) => setPassword(e.currentTarget.value)} required autoComplete="current-password" />
              <TextInput label={t("totp")} value={code} onChange={(e) => setCode(e.currentTarget.value)} inputMode="numeric" autoComplete="one-time-code" />
              {error && <Alert color="red" role="alert">{error}</Alert>}
              <Button type="submit" loading={busy}>{t("login")}</Button>
            </Stack>
          </form>
        </Paper>
      </Center>
    </main>
  );
}
