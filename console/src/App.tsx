import { AppShell, Badge, Button, Group, Loader, NavLink, Title } from "@mantine/core";
import { useEffect, useState } from "react";
import { logout, refresh } from "./api";
import type { Operator } from "./gen/vipay/operators/v1/operators_pb";
import { LangContext, type Key, type Lang, useT } from "./i18n";
import { AuditPage } from "./pages/Audit";
import { CatalogPage } from "./pages/Catalog";
import { LoginPage } from "./pages/Login";
import { MerchantsPage } from "./pages/Merchants";
import { OrdersPage } from "./pages/Orders";
import { UsersPage } from "./pages/Users";
import { RechargePage } from "./pages/Recharge";
import { HealthPage } from "./pages/Health";

const PAGES: { path: string; label: Key; Page: (p: { operator: Operator }) => JSX.Element | null }[] = [
  { path: "catalog", label: "nav_catalog", Page: CatalogPage },
  { path: "recharge", label: "nav_recharge", Page: RechargePage },
  { path: "orders", label: "nav_orders", Page: OrdersPage },
  { path: "users", label: "nav_users", Page: UsersPage },
  { path: "merchants", label: "nav_merchants", Page: MerchantsPage },
  { path: "health", label: "nav_health", Page: HealthPage },
  { path: "audit", label: "nav_audit", Page: AuditPage },
];

function usePath(): [string, (p: string) => void] {
  const read = () => window.location.hash.replace(/^#\/?/, "") || PAGES[0].path;
  const [path, setPath] = useState(read);
  useEffect(() => {
    const on = () => setPath(read());
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return [path, (p) => (window.location.hash = `#/${p}`)];
}

export function App() {
  const [lang, setLang] = useState<Lang>((localStorage.getItem("vipay-console-lang") as Lang) || "zh");
  const [operator, setOperator] = useState<Operator | null | undefined>(undefined);
  useEffect(() => {
    void refresh().then(setOperator);
  }, []);
  useEffect(() => {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    localStorage.setItem("vipay-console-lang", lang);
  }, [lang]);
  return (
    <LangContext.Provider value={lang}>
      {operator === undefined ? (
        <Loader aria-label="loading" m="xl" />
      ) : operator === null ? (
        <LoginPage onLogin={setOperator} onLang={() => setLang(lang === "zh" ? "en" : "zh")} />
      ) : (
        <Shell operator={operator} onLogout={() => setOperator(null)} onLang={() => setLang(lang === "zh" ? "en" : "zh")} />
      )}
    </LangContext.Provider>
  );
}

function Shell({ operator, onLogout, onLang }: { operator: Operator; onLogout: () => void; onLang: () => void }) {
  const t = useT();
  const [path, go] = usePath();
  const current = PAGES.find((p) => p.path === path) ?? PAGES[0];
  return (
    <AppShell header={{ height: 56 }} navbar={{ width: 220, breakpoint: "xs" }} padding="md">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between">
          <Title order={1} size="h3">{t("title")}</Title>
          <Group>
            <span data-testid="operator">{operator.name}</span>
            <Badge aria-label={t("role")}>{operator.role}</Badge>
            <Button variant="default" onClick={onLang}>{t("language")}</Button>
            <Button variant="outline" onClick={() => void logout().finally(onLogout)}>{t("logout")}</Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" component="nav" aria-label="pages">
        {PAGES.map((p) => (
          <NavLink key={p.path} href={`#/${p.path}`} label={t(p.label)} active={p.path === current.path}
            aria-current={p.path === current.path ? "page" : undefined} onClick={(e) => { e.preventDefault(); go(p.path); }} />
        ))}
      </AppShell.Navbar>
      <AppShell.Main>
        <current.Page operator={operator} />
      </AppShell.Main>
    </AppShell>
  );
}
