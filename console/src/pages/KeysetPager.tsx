// Newer / older pages of a list the server pages by keyset (AIP-158 page tokens that say
// "after this id"): only the next page's token is known, so the pager keeps the tokens of
// the pages already seen to step back. Give the list a `key` to start it again at page 1.
import { Button, Group, Text } from "@mantine/core";
import { useState } from "react";
import { useT } from "../i18n";

export function useKeysetPages() {
  const [tokens, setTokens] = useState<string[]>([""]);  // tokens[i]: page i+1
  return {
    token: tokens[tokens.length - 1],
    page: tokens.length,
    older: (next: string) => setTokens((t) => [...t, next]),
    newer: () => setTokens((t) => (t.length > 1 ? t.slice(0, -1) : t)),
  };
}

export function KeysetPager({ pages, next, total, label }: {
  pages: ReturnType<typeof useKeysetPages>; next: string; total: number; label: string;
}) {
  const t = useT();
  return (
    <Group aria-label={label} role="group">
      <Button size="xs" variant="default" disabled={pages.page <= 1} onClick={pages.newer}>{t("newer")}</Button>
      <Text size="sm">{t("page")} {pages.page} · {t("total")} {total}</Text>
      <Button size="xs" variant="default" disabled={!next} onClick={() => pages.older(next)}>{t("older")}</Button>
    </Group>
  );
}
