// A user: membership per level (GetMembershipStatus), wallet balance and ledger
// (WalletService.GetWallet, paged by the server), and an adjustment with a reason
// (CreditWallet / DebitWallet: finance and admin; audited by the server).
import { Alert, Button, Group, Pagination, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useEffect, useState } from "react";
import { describe, membership, pageToken, wallet, when } from "../api";
import type { LevelTerm } from "../gen/vipay/membership/v1/membership_pb";
import type { WalletEntry } from "../gen/vipay/recharge/v1/wallet_pb";
import { useT } from "../i18n";
import { AuditTable } from "./Audit";

const PAGE_SIZE = 20;
const yuan = (fen: bigint) => (Number(fen) / 100).toFixed(2);

export function UsersPage() {
  const t = useT();
  const [input, setInput] = useState("");
  const [userId, setUserId] = useState(0);
  const [terms, setTerms] = useState<LevelTerm[]>([]);
  const [balance, setBalance] = useState<bigint>(0n);
  const [entries, setEntries] = useState<WalletEntry[]>([]);
  const [page, setPage] = useState(1);
  const [more, setMore] = useState(false);
  const [amount, setAmount] = useState("");
  const [reason, setReason] = useState("");
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [version, setVersion] = useState(0);

  useEffect(() => {
    if (!userId) return;
    const id = BigInt(userId);
    membership.getMembershipStatus({ userId: id }).then((r) => setTerms(r.levels)).catch((e) => setMessage({ ok: false, text: describe(e) }));
    wallet.getWallet({ userId: id, pageSize: PAGE_SIZE, pageToken: pageToken((page - 1) * PAGE_SIZE) })
      .then((r) => { setBalance(r.balanceFen); setEntries(r.entries); setMore(r.nextPageToken !== ""); })
      .catch((e) => setMessage({ ok: false, text: describe(e) }));
  }, [userId, page, version]);

  const adjust = async () => {
    setMessage(null);
    const fen = Math.round(Number(amount) * 100);
    if (!fen || Number.isNaN(fen)) { setMessage({ ok: false, text: t("adjust") }); return; }
    const request = { userId: BigInt(userId), amountFen: BigInt(Math.abs(fen)), reference: reason, requestId: crypto.randomUUID() };
    try {
      const answer = fen > 0 ? await wallet.creditWallet(request) : await wallet.debitWallet(request);
      setMessage({ ok: true, text: `${t("adjusted")}: ${yuan(answer.balanceFen)}` });
      setVersion((v) => v + 1);
    } catch (err) {
      setMessage({ ok: false, text: describe(err) });
    }
  };
  return (
    <Stack>
      <Title order={2}>{t("nav_users")}</Title>
      <form onSubmit={(e) => { e.preventDefault(); setPage(1); setUserId(Number(input) || 0); }}>
        <Group align="end">
          <TextInput label={t("user_id")} value={input} onChange={(e) => setInput(e.currentTarget.value)} inputMode="numeric" />
          <Button type="submit">{t("load")}</Button>
        </Group>
      </form>
      {message && <Alert color={message.ok ? "green" : "red"}>{message.text}</Alert>}
      {userId > 0 && (
        <>
          <Title order={3}>{t("membership")}</Title>
          <Table withTableBorder data-testid="user-membership">
            <Table.Thead><Table.Tr><Table.Th>level</Table.Th><Table.Th>{t("expires")}</Table.Th><Table.Th>active</Table.Th></Table.Tr></Table.Thead>
            <Table.Tbody>
              {terms.length === 0 && <Table.Tr><Table.Td colSpan={3}>{t("no_entries")}</Table.Td></Table.Tr>}
              {terms.map((l) => <Table.Tr key={l.level}><Table.Td>{l.level}</Table.Td><Table.Td>{when(l.expireTime)}</Table.Td><Table.Td>{String(l.active)}</Table.Td></Table.Tr>)}
            </Table.Tbody>
          </Table>
          <Title order={3}>{t("wallet")}</Title>
          <Text data-testid="wallet-balance">{t("wallet_balance")}: {yuan(balance)}</Text>
          <Table striped withTableBorder data-testid="wallet-entries">
            <Table.Thead><Table.Tr>
              <Table.Th>id</Table.Th><Table.Th>{t("amount")}</Table.Th><Table.Th>{t("wallet_balance")}</Table.Th>
              <Table.Th>{t("audit_reason")}</Table.Th><Table.Th>{t("reference")}</Table.Th><Table.Th>{t("created")}</Table.Th>
            </Table.Tr></Table.Thead>
            <Table.Tbody>
              {entries.map((e) => (
                <Table.Tr key={String(e.id)}><Table.Td>{String(e.id)}</Table.Td><Table.Td>{yuan(e.amountFen)}</Table.Td>
                  <Table.Td>{yuan(e.balanceAfterFen)}</Table.Td><Table.Td>{e.reason}</Table.Td><Table.Td>{e.reference}</Table.Td>
                  <Table.Td>{when(e.createTime)}</Table.Td></Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          <Pagination total={more ? page + 1 : page} value={page} onChange={setPage}
            getControlProps={(control) => ({ "aria-label": control })} getItemProps={(p) => ({ "aria-label": `page ${p}` })} />
          <Group align="end">
            <TextInput label={t("adjust")} value={amount} onChange={(e) => setAmount(e.currentTarget.value)} inputMode="decimal" />
            <TextInput label={t("reason")} value={reason} onChange={(e) => setReason(e.currentTarget.value)} required w={320} />
            <Button onClick={() => void adjust()} disabled={!reason.trim()}>{t("apply")}</Button>
          </Group>
          <AuditTable key={version} target={`user:${userId}`} />
        </>
      )}
    </Stack>
  );
}
