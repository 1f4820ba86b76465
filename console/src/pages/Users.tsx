// A user: membership per level and the grant chain that built it (ConsoleService.
// ListMembershipGrants: the membership ledger, keyset-paged by the server), wallet balance
// and ledger (WalletService.GetWallet, paged by the server), and an adjustment with a
// reason (CreditWallet / DebitWallet: finance and admin; audited by the server).
import { Alert, Button, Group, Pagination, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useCallback, useEffect, useState } from "react";
import { consoleReads, describe, pageToken, wallet, when } from "../api";
import type { MembershipGrant, MembershipTerm } from "../gen/vipay/console/v1/console_pb";
import type { WalletEntry } from "../gen/vipay/recharge/v1/wallet_pb";
import { useT, type Key } from "../i18n";
import { AuditTable } from "./Audit";
import { KeysetPager, useKeysetPages } from "./KeysetPager";

const PAGE_SIZE = 20;
const yuan = (fen: bigint) => (Number(fen) / 100).toFixed(2);
const days = (seconds: bigint) => `${seconds > 0n ? "+" : ""}${(Number(seconds) / 86400).toFixed(2)}`;

// membership_grants.source values with a label (others are shown as they are).
const SOURCES = ["vip_order", "recharge_order", "merchant_order", "exchange_in", "exchange_out", "iap_refund",
  "order_refund", "order_refund_undo"] as const;

/** The membership ledger of one user, newest first: what each grant or take-back did. */
function GrantChain({ userId, version, onTerms }: {
  userId: number; version: number; onTerms: (terms: MembershipTerm[], current: string) => void;
}) {
  const t = useT();
  const pages = useKeysetPages();
  const [grants, setGrants] = useState<MembershipGrant[]>([]);
  const [next, setNext] = useState("");
  const [total, setTotal] = useState(0);
  const [error, setError] = useState("");
  useEffect(() => {
    consoleReads.listMembershipGrants({ userId: BigInt(userId), pageSize: PAGE_SIZE, pageToken: pages.token })
      .then((r) => {
        setGrants(r.grants); setNext(r.nextPageToken); setTotal(Number(r.totalSize)); setError("");
        onTerms(r.terms, r.currentLevel);  // every page carries them: one read for both tables
      })
      .catch((e) => setError(describe(e)));
  }, [userId, pages.token, version, onTerms]);
  const source = (s: string) => ((SOURCES as readonly string[]).includes(s) ? t(`src_${s}` as Key) : s);
  return (
    <>
      <Title order={3}>{t("grant_chain")}</Title>
      {error && <Text c="red.9">{error}</Text>}
      <Table striped withTableBorder data-testid="grant-chain">
        <Table.Thead><Table.Tr>
          <Table.Th>id</Table.Th><Table.Th>{t("level")}</Table.Th><Table.Th>{t("source")}</Table.Th>
          <Table.Th>{t("reference")}</Table.Th><Table.Th>{t("added")}</Table.Th><Table.Th>{t("previous_expiry")}</Table.Th>
          <Table.Th>{t("expires")}</Table.Th><Table.Th>{t("created")}</Table.Th>
        </Table.Tr></Table.Thead>
        <Table.Tbody>
          {grants.length === 0 && <Table.Tr><Table.Td colSpan={8}>{t("no_entries")}</Table.Td></Table.Tr>}
          {grants.map((g) => (
            <Table.Tr key={String(g.id)} data-source={g.source}>
              <Table.Td>{String(g.id)}</Table.Td><Table.Td>{g.level}</Table.Td><Table.Td>{source(g.source)}</Table.Td>
              <Table.Td>{g.sourceRef}</Table.Td><Table.Td>{days(g.addedSeconds)}</Table.Td>
              <Table.Td>{when(g.previousExpireTime)}</Table.Td><Table.Td>{when(g.expireTime)}</Table.Td>
              <Table.Td>{when(g.createTime)}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <KeysetPager pages={pages} next={next} total={total} label={t("grant_chain")} />
    </>
  );
}

export function UsersPage() {
  const t = useT();
  const [input, setInput] = useState("");
  const [userId, setUserId] = useState(0);
  const [terms, setTerms] = useState<MembershipTerm[]>([]);
  const [current, setCurrent] = useState("");
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
    wallet.getWallet({ userId: id, pageSize: PAGE_SIZE, pageToken: pageToken((page - 1) * PAGE_SIZE) })
      .then((r) => { setBalance(r.balanceFen); setEntries(r.entries); setMore(r.nextPageToken !== ""); })
      .catch((e) => setMessage({ ok: false, text: describe(e) }));
  }, [userId, page, version]);

  const showTerms = useCallback((levels: MembershipTerm[], level: string) => { setTerms(levels); setCurrent(level); }, []);

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
          <Text data-testid="current-level">{t("current_level")}: {current || "—"}</Text>
          <Table withTableBorder data-testid="user-membership">
            <Table.Thead><Table.Tr><Table.Th>level</Table.Th><Table.Th>{t("expires")}</Table.Th><Table.Th>active</Table.Th></Table.Tr></Table.Thead>
            <Table.Tbody>
              {terms.length === 0 && <Table.Tr><Table.Td colSpan={3}>{t("no_entries")}</Table.Td></Table.Tr>}
              {terms.map((l) => <Table.Tr key={l.level}><Table.Td>{l.level}</Table.Td><Table.Td>{when(l.expireTime)}</Table.Td><Table.Td>{String(l.active)}</Table.Td></Table.Tr>)}
            </Table.Tbody>
          </Table>
          <GrantChain key={userId} userId={userId} version={version} onTerms={showTerms} />
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
