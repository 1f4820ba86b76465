// Merchants (api-docs/004): list, create (keys shown once, downloadable), top-up,
// callback URL, key rotation, the balance ledger (keyset-paged by the server), callback
// deliveries and resend. The server decides who may change what (MerchantAdminService:
// admin); every change needs a reason.
import { Alert, Button, Code, Group, Modal, Select, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useEffect, useState } from "react";
import { describe, merchants, when } from "../api";
import type { IssuedKeys, MerchantBalanceEntry, MerchantCallback, MerchantInfo } from "../gen/vipay/openapi/v1/merchant_admin_pb";
import { useT, type Key } from "../i18n";
import { AuditTable } from "./Audit";
import { KeysetPager, useKeysetPages } from "./KeysetPager";

const LEDGER_PAGE = 20;
const KINDS = ["topup", "charge", "refund"];

/** One merchant's balance movements, newest first, money as 004 renders it. */
function BalanceLedger({ merchantId, version }: { merchantId: string; version: number }) {
  const t = useT();
  const pages = useKeysetPages();
  const [entries, setEntries] = useState<MerchantBalanceEntry[]>([]);
  const [next, setNext] = useState("");
  const [total, setTotal] = useState(0);
  const [balance, setBalance] = useState("");
  const [error, setError] = useState("");
  useEffect(() => {
    merchants.listMerchantBalanceEntries({ merchantId, pageSize: LEDGER_PAGE, pageToken: pages.token })
      .then((r) => { setEntries(r.entries); setNext(r.nextPageToken); setTotal(Number(r.totalSize)); setBalance(r.balanceDisplay); setError(""); })
      .catch((e) => setError(describe(e)));
  }, [merchantId, pages.token, version]);
  return (
    <Stack>
      {error && <Text c="red.9">{error}</Text>}
      <Text data-testid="ledger-balance">{t("balance")}: {balance}</Text>
      <Table striped withTableBorder data-testid="balance-ledger">
        <Table.Thead><Table.Tr>
          <Table.Th>id</Table.Th><Table.Th>{t("kind")}</Table.Th><Table.Th>{t("amount")}</Table.Th>
          <Table.Th>{t("balance_after")}</Table.Th><Table.Th>{t("order_number")}</Table.Th><Table.Th>{t("note")}</Table.Th>
          <Table.Th>{t("created")}</Table.Th>
        </Table.Tr></Table.Thead>
        <Table.Tbody>
          {entries.length === 0 && <Table.Tr><Table.Td colSpan={7}>{t("no_entries")}</Table.Td></Table.Tr>}
          {entries.map((e) => (
            <Table.Tr key={String(e.id)} data-kind={e.kind}>
              <Table.Td>{String(e.id)}</Table.Td>
              <Table.Td>{KINDS.includes(e.kind) ? t(`kind_${e.kind}` as Key) : e.kind}</Table.Td>
              <Table.Td>{e.amountDisplay}</Table.Td><Table.Td>{e.balanceAfterDisplay}</Table.Td>
              <Table.Td>{e.orderCode}</Table.Td><Table.Td>{e.note}</Table.Td><Table.Td>{when(e.createTime)}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <KeysetPager pages={pages} next={next} total={total} label={t("balance_ledger")} />
    </Stack>
  );
}

function download(name: string, text: string) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  a.click();
  URL.revokeObjectURL(url);
}

export function MerchantsPage() {
  const t = useT();
  const [list, setList] = useState<MerchantInfo[]>([]);
  const [deliveries, setDeliveries] = useState<MerchantCallback[]>([]);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [keys, setKeys] = useState<{ id: string; keys: IssuedKeys } | null>(null);
  const [version, setVersion] = useState(0);
  const [reason, setReason] = useState("");
  const [target, setTarget] = useState<string | null>(null);
  const [amount, setAmount] = useState("");
  const [url, setUrl] = useState("");
  const [newId, setNewId] = useState("");
  const [newName, setNewName] = useState("");
  const [ledgerOf, setLedgerOf] = useState<string | null>(null);

  useEffect(() => {
    merchants.listMerchants({}).then((r) => setList(r.merchants)).catch((e) => setMessage({ ok: false, text: describe(e) }));
    merchants.listMerchantCallbacks({ pageSize: 50 }).then((r) => setDeliveries(r.callbacks)).catch(() => undefined);
  }, [version]);

  const act = async (what: () => Promise<unknown>, ok: string) => {
    setMessage(null);
    try {
      await what();
      setMessage({ ok: true, text: ok });
      setVersion((v) => v + 1);
    } catch (err) {
      setMessage({ ok: false, text: describe(err) });
    }
  };
  const merchantId = target ?? "";
  return (
    <Stack>
      <Title order={2}>{t("nav_merchants")}</Title>
      <Table striped withTableBorder data-testid="merchants-table">
        <Table.Thead><Table.Tr>
          <Table.Th>{t("merchant_id")}</Table.Th><Table.Th>{t("level_name")}</Table.Th><Table.Th>{t("state")}</Table.Th>
          <Table.Th>{t("balance")}</Table.Th><Table.Th>{t("callback_url")}</Table.Th><Table.Th>{t("products")}</Table.Th>
          <Table.Th>{t("orders_count")}</Table.Th>
        </Table.Tr></Table.Thead>
        <Table.Tbody>
          {list.map((m) => (
            <Table.Tr key={m.merchantId}>
              <Table.Td>{m.merchantId}</Table.Td><Table.Td>{m.name}</Table.Td><Table.Td>{m.state}</Table.Td>
              <Table.Td>{m.balanceDisplay}</Table.Td><Table.Td>{m.callbackUrl}</Table.Td>
              <Table.Td>{m.products.map((p) => `${p.productCode}: ${p.level} x${p.months} = ${Number(p.settlementPriceFen) / 100}`).join("; ")}</Table.Td>
              <Table.Td>{String(m.orderCount)}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <TextInput label={t("reason")} value={reason} onChange={(e) => setReason(e.currentTarget.value)} required />
      {message && <Alert color={message.ok ? "green" : "red"}>{message.text}</Alert>}
      <Group align="end">
        <TextInput label={t("merchant_id")} value={newId} onChange={(e) => setNewId(e.currentTarget.value)} />
        <TextInput label={t("level_name")} value={newName} onChange={(e) => setNewName(e.currentTarget.value)} />
        <Button onClick={() => void act(async () => {
          const answer = await merchants.createMerchant({ merchantId: newId, name: newName, md5: true, reason });
          setKeys({ id: newId, keys: answer.keys! });
        }, t("create_merchant"))}>{t("create_merchant")}</Button>
      </Group>
      <Group align="end">
        <Select label={t("merchant_id")} data={list.map((m) => m.merchantId)} value={target} onChange={setTarget} w={160} />
        <TextInput label={t("top_up")} value={amount} onChange={(e) => setAmount(e.currentTarget.value)} inputMode="decimal" w={140} />
        <Button onClick={() => void act(() => merchants.topUpMerchant({ merchantId, amountFen: BigInt(Math.round(Number(amount) * 100)), reason }), t("top_up"))}>{t("apply")}</Button>
        <TextInput label={t("callback_url")} value={url} onChange={(e) => setUrl(e.currentTarget.value)} w={260} />
        <Button onClick={() => void act(() => merchants.setMerchantCallbackUrl({ merchantId, callbackUrl: url, reason }), t("set_url"))}>{t("set_url")}</Button>
        <Button variant="outline" onClick={() => void act(async () => {
          const answer = await merchants.rotateMerchantKeys({ merchantId, rsa: true, md5: false, reason });
          setKeys({ id: merchantId, keys: answer.keys! });
        }, t("rotate"))}>{t("rotate")}</Button>
      </Group>
      <Title order={3}>{t("balance_ledger")}</Title>
      <Select label={t("ledger_merchant")} data={list.map((m) => m.merchantId)} value={ledgerOf} onChange={setLedgerOf} w={240} />
      {ledgerOf && <BalanceLedger key={ledgerOf} merchantId={ledgerOf} version={version} />}
      <Title order={3}>{t("deliveries")}</Title>
      <Table striped withTableBorder data-testid="deliveries-table">
        <Table.Thead><Table.Tr>
          <Table.Th>id</Table.Th><Table.Th>{t("order_number")}</Table.Th><Table.Th>{t("callback_url")}</Table.Th>
          <Table.Th>{t("state")}</Table.Th><Table.Th>{t("attempts")}</Table.Th><Table.Th />
        </Table.Tr></Table.Thead>
        <Table.Tbody>
          {deliveries.map((c) => (
            <Table.Tr key={String(c.id)}>
              <Table.Td>{String(c.id)}</Table.Td><Table.Td>{c.orderCode}</Table.Td><Table.Td>{c.url}</Table.Td>
              <Table.Td>{c.state}</Table.Td><Table.Td>{c.attempts}</Table.Td>
              <Table.Td><Button size="xs" variant="light" aria-label={`${t("resend")} ${c.orderCode}`}
                onClick={() => void act(() => merchants.resendMerchantCallback({ callbackId: c.id, reason }), t("resent"))}>{t("resend")}</Button></Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <Title order={3}>{t("nav_audit")}</Title>
      <AuditTable key={version} />
      <Modal opened={keys !== null} onClose={() => setKeys(null)} title={t("keys_once")} size="lg" closeButtonProps={{ "aria-label": t("close") }}>
        {keys && (
          <Stack>
            {keys.keys.rsaPrivateKey && <><Code block>{keys.keys.rsaPrivateKey}</Code>
              <Button onClick={() => download(`${keys.id}.pem`, keys.keys.rsaPrivateKey)}>{t("download")} PEM</Button></>}
            {keys.keys.md5Secret && <><Code block>{keys.keys.md5Secret}</Code>
              <Button onClick={() => download(`${keys.id}.md5.txt`, keys.keys.md5Secret)}>{t("download")} MD5</Button></>}
          </Stack>
        )}
      </Modal>
    </Stack>
  );
}
