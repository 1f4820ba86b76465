// The operator console in a real browser against a live stack (make console-test).
import AxeBuilder from "@axe-core/playwright";
import { expect, test, type Page } from "@playwright/test";

const PASSWORD = process.env.VIPAY_OPERATOR_PASSWORD!;
const PUBLIC = process.env.VIPAY_HTTP!;
const SHOTS = "screenshots";

async function login(page: Page, name: string, password = PASSWORD) {
  await page.goto("/");
  await page.getByLabel(/用户名|Name/).fill(name);
  await page.getByLabel(/^(密码|Password)/).fill(password);
  await page.getByRole("button", { name: /登录|Log in/ }).click();
}

async function noSeriousViolations(page: Page) {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(bad.map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(", ")}`)).toEqual([]);
}

test("the login page is accessible in both languages", async ({ page }) => {
  await page.goto("/");
  await expect(page.getByRole("button", { name: "登录" })).toBeVisible();
  await noSeriousViolations(page);
  await page.screenshot({ path: `${SHOTS}/login-zh.png`, fullPage: true });
  await page.getByRole("button", { name: "English" }).click();
  await expect(page.getByRole("button", { name: "Log in" })).toBeVisible();
  await noSeriousViolations(page);
  await page.screenshot({ path: `${SHOTS}/login-en.png`, fullPage: true });
});

for (const role of ["admin", "finance", "support"]) {
  test(`a ${role} operator logs in and out`, async ({ page }) => {
    await login(page, `${role}-op`);
    await expect(page.getByTestId("operator")).toHaveText(`${role}-op`);
    await expect(page.getByLabel(/角色|Role/)).toHaveText(role);
    await page.goto("/#/audit");
    await expect(page.getByTestId("audit-table")).toBeVisible();
    await noSeriousViolations(page);
    await page.screenshot({ path: `${SHOTS}/audit-${role}.png`, fullPage: true });
    await page.getByRole("button", { name: /退出登录|Log out/ }).click();
    await expect(page.getByRole("button", { name: /登录|Log in/ })).toBeVisible();
    await page.reload();  // the session is gone, not just hidden
    await expect(page.getByRole("button", { name: /登录|Log in/ })).toBeVisible();
  });
}

test("an admin changes a VIP price and the public path serves it; history can roll it back", async ({ page, request }) => {
  await login(page, "admin-op");
  await page.goto("/#/catalog");
  const price = page.getByLabel("middle 3 价格（元）");
  await expect(price).toBeVisible();
  const before = (await (await request.get(`${PUBLIC}/api/v2/vip/configs`)).json()).config.middle.setting[1];
  expect(before.duration).toBe(3);
  await price.fill("77.77");
  await expect(page.getByTestId("preview")).toContainText('"price": 77.77');
  await page.getByLabel(/原因|Reason/).fill("browser test price change");
  await noSeriousViolations(page);
  await page.getByRole("button", { name: /^(保存|Save)$/ }).click();
  await expect(page.getByRole("alert")).toContainText(/已保存|Saved/);
  await expect.poll(async () => (await (await request.get(`${PUBLIC}/api/v2/vip/configs`)).json()).config.middle.setting[1].price,
    { timeout: 10_000 }).toBe(77.77);
  const history = page.getByTestId("audit-table");
  await expect(history).toContainText("browser test price change");
  await expect(history).toContainText(`config.middle.setting.1.price: ${before.price} → 77.77`);
  await page.screenshot({ path: `${SHOTS}/catalog.png`, fullPage: true });

  await history.getByRole("button").first().click();  // roll back to before the change
  await expect.poll(async () => (await (await request.get(`${PUBLIC}/api/v2/vip/configs`)).json()).config.middle.setting[1].price,
    { timeout: 10_000 }).toBe(before.price);
});

test("a support operator's catalog change is refused by the server", async ({ page, request }) => {
  await login(page, "support-op");
  await page.goto("/#/catalog");
  await page.getByLabel("middle 3 价格（元）").fill("1.23");
  await page.getByLabel(/原因|Reason/).fill("should not work");
  await page.getByRole("button", { name: /^(保存|Save)$/ }).click();
  await expect(page.getByRole("alert")).toContainText("PermissionDenied");
  const served = (await (await request.get(`${PUBLIC}/api/v2/vip/configs`)).json()).config.middle.setting[1].price;
  expect(served).not.toBe(1.23);
});

test("five wrong passwords lock the account, then the right one is refused too", async ({ page }) => {
  for (let i = 1; i <= 4; i++) {
    await login(page, "locked-op", `wrong-password-${i}`);
    await expect(page.getByRole("alert")).toContainText("Unauthenticated");
  }
  await login(page, "locked-op", "wrong-password-5");
  await expect(page.getByRole("alert")).toContainText(/PermissionDenied.*locked/);
  await login(page, "locked-op");
  await expect(page.getByRole("alert")).toContainText(/PermissionDenied.*locked/);
  await page.screenshot({ path: `${SHOTS}/locked.png`, fullPage: true });
});

const ORDER = process.env.VIPAY_PAID_VIP_ORDER!;

async function openOrder(page: Page) {
  await page.goto("/#/orders");
  await page.getByLabel(/^(订单号|Order number)$/).fill(ORDER);
  await page.getByRole("button", { name: /^(搜索|Search)$/ }).click();
  await expect(page.getByTestId("orders-table")).toContainText(ORDER);
  // The date filters reach the server: the order was created today, not tomorrow.
  const day = (offset: number) => {
    const d = new Date(Date.now() + offset * 86400_000);
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
  };
  await page.getByLabel(/^(创建日期自|Created from)$/).fill(day(1));
  await page.getByRole("button", { name: /^(搜索|Search)$/ }).click();
  await expect(page.getByTestId("orders-table")).not.toContainText(ORDER);
  await page.getByLabel(/^(创建日期自|Created from)$/).fill(day(0));
  await page.getByLabel(/^(创建日期至|Created to)$/).fill(day(0));
  await page.getByRole("button", { name: /^(搜索|Search)$/ }).click();
  await expect(page.getByTestId("orders-table")).toContainText(ORDER);
  await page.getByRole("button", { name: new RegExp(`(详情|Details) ${ORDER}`) }).click();
  await expect(page.getByTestId("order-detail")).toContainText("paid");
}

test("a support operator's refund is refused by the server", async ({ page }) => {
  await login(page, "support-op");
  await openOrder(page);
  await page.getByLabel(/退款金额|Refund amount/).fill("1");
  await page.getByLabel(/原因|Reason/).fill("support tries");
  await page.getByRole("button", { name: /^(退款|Refund)$/ }).click();
  await expect(page.getByRole("alert")).toContainText("PermissionDenied");
  await expect(page.getByTestId("refunds")).not.toContainText("support tries");
});

test("finance refunds a sandbox-paid order partially: the membership is shortened and audited", async ({ page }) => {
  await login(page, "finance-op");
  await openOrder(page);
  const expiry = page.getByTestId("expiry-middle");
  await expect(expiry).not.toHaveText("");
  const before = Date.parse((await expiry.textContent())!.replace(" ", "T"));
  await noSeriousViolations(page);
  await page.screenshot({ path: `${SHOTS}/order-detail.png`, fullPage: true });
  // A third of the price (001 middle x3 = 5400 fen): a third of the 3 months back.
  const fen = Number((await page.getByTestId("order-detail").textContent())!.match(/\((\d+) fen\)/)![1]);
  await page.getByLabel(/退款金额|Refund amount/).fill(String(fen / 3 / 100));
  await page.getByLabel(/原因|Reason/).fill("browser partial refund");
  await page.getByRole("button", { name: /^(退款|Refund)$/ }).click();
  await expect(page.getByRole("alert")).toContainText(/退款已提交|Refund recorded/);
  await expect(page.getByTestId("refunds")).toContainText("browser partial refund");
  await expect.poll(async () => Date.parse((await expiry.textContent())!.replace(" ", "T"))).toBeLessThan(before);
  const after = Date.parse((await expiry.textContent())!.replace(" ", "T"));
  const days = (before - after) / 86_400_000;
  expect(days).toBeGreaterThan(25);  // about one month of three (30 days, by the area's month arithmetic)
  expect(days).toBeLessThan(32);
  const audit = page.getByRole("dialog").getByTestId("audit-table");
  await expect(audit).toContainText("order.refund");
  await expect(audit).toContainText("finance-op (finance)");
  await expect(audit).toContainText("browser partial refund");
  await page.screenshot({ path: `${SHOTS}/order-refunded.png`, fullPage: true });
  await page.keyboard.press("Escape");
  await expect(page.getByRole("dialog")).toHaveCount(0);
  await noSeriousViolations(page);
  await page.screenshot({ path: `${SHOTS}/orders.png`, fullPage: true });
});

async function openByNumber(page: Page, number: string) {
  await page.goto("/#/orders");
  await page.getByLabel(/^(订单号|Order number)$/).fill(number);
  await page.getByRole("button", { name: /^(搜索|Search)$/ }).click();
  await expect(page.getByTestId("orders-table")).toContainText(number);
  await page.getByRole("button", { name: new RegExp(`(详情|Details) ${number}`) }).click();
  await expect(page.getByTestId("order-detail")).toBeVisible();
}

test("an order's detail shows its notification and grant; finance re-queries one order and closes another", async ({ page }) => {
  await login(page, "finance-op");
  await openByNumber(page, ORDER);
  await expect(page.getByTestId("notifications")).toContainText(/notification.*sandbox.*5400 分.*paid.*settled/);
  await expect(page.getByTestId("grants")).toContainText(/middle.*vip_order/);
  await expect(page.getByTestId("payment-data")).toContainText("Alipay_AopApp");
  await noSeriousViolations(page);
  await page.setViewportSize({ width: 1280, height: 1900 });  // the whole drawer in the picture
  await page.screenshot({ path: `${SHOTS}/order-detail-full.png`, fullPage: true });
  await page.setViewportSize({ width: 1280, height: 720 });
  await page.keyboard.press("Escape");

  // Paid at the provider, the notification lost: a re-query settles it (and grants once).
  const lost = process.env.VIPAY_LOST_NOTIFICATION_ORDER!;
  await openByNumber(page, lost);
  await expect(page.getByTestId("order-state")).toHaveText("unpaid");
  await expect(page.getByTestId("grants")).toHaveCount(0);
  await page.getByLabel(/原因|Reason/).fill("customer says paid");
  await page.getByRole("button", { name: /^(向渠道查询|Re-query the provider)$/ }).click();
  await expect(page.getByRole("alert")).toContainText(/unpaid → paid.*paid/);
  await expect(page.getByTestId("order-state")).toHaveText("paid");
  await expect(page.getByTestId("notifications")).toContainText(/query.*settled/);
  await expect(page.getByTestId("grants")).toContainText(/middle.*vip_order/);
  await expect(page.getByRole("dialog").getByTestId("audit-table")).toContainText(/order\.requery/);
  await noSeriousViolations(page);
  await page.setViewportSize({ width: 1280, height: 1900 });
  await page.screenshot({ path: `${SHOTS}/order-requeried.png`, fullPage: true });
  await page.setViewportSize({ width: 1280, height: 720 });
  await page.keyboard.press("Escape");

  // An unpaid order is closed (keyboard only: the reason, then Tab to the action).
  const unpaid = process.env.VIPAY_UNPAID_VIP_ORDER!;
  await openByNumber(page, unpaid);
  await expect(page.getByTestId("order-state")).toHaveText("unpaid");
  await page.getByLabel(/原因|Reason/).fill("customer gave up");
  await page.getByRole("button", { name: /^(关闭未支付订单|Close the unpaid order)$/ }).focus();
  await page.keyboard.press("Enter");
  await expect(page.getByRole("alert")).toContainText("unpaid → closed");
  await expect(page.getByTestId("order-state")).toHaveText("closed");
  await expect(page.getByRole("button", { name: /^(关闭未支付订单|Close the unpaid order)$/ })).toHaveCount(0);
  const audit = page.getByRole("dialog").getByTestId("audit-table");
  await expect(audit).toContainText("order.close");
  await expect(audit).toContainText("customer gave up");
  await noSeriousViolations(page);
  await page.screenshot({ path: `${SHOTS}/order-closed.png`, fullPage: true });
});

const RECEIVER = process.env.VIPAY_CALLBACK_RECEIVER!;

test("an admin resends a merchant callback and the merchant receives it again", async ({ page, request }) => {
  const before = Number(await (await request.get(RECEIVER)).text());
  expect(before).toBeGreaterThanOrEqual(1);
  await login(page, "admin-op");
  await page.goto("/#/merchants");
  await expect(page.getByTestId("merchants-table")).toContainText("sdk-m1");
  const deliveries = page.getByTestId("deliveries-table");
  await expect(deliveries).toContainText("delivered");
  await noSeriousViolations(page);
  await page.getByLabel(/^(原因|Reason)/).fill("merchant lost the callback");
  await deliveries.getByRole("button", { name: /重发|Resend/ }).first().click();
  await expect(page.getByRole("alert")).toContainText(/已重新排队|Queued again/);
  await expect.poll(async () => Number(await (await request.get(RECEIVER)).text()), { timeout: 20_000 }).toBe(before + 1);
  await expect(page.getByTestId("audit-table").first()).toContainText("merchant.resend_callback");
  await page.screenshot({ path: `${SHOTS}/merchants.png`, fullPage: true });
});

test("an admin creates a merchant and sees its keys once; finance may not", async ({ page }) => {
  await login(page, "finance-op");
  await page.goto("/#/merchants");
  await page.getByLabel(/^(原因|Reason)/).fill("new partner");
  await page.getByLabel(/^(商户号|Merchant id)$/).first().fill("e2e-m");
  await page.getByRole("button", { name: /新建商户|Create merchant/ }).click();
  await expect(page.getByRole("alert")).toContainText("PermissionDenied");
  await page.getByRole("button", { name: /退出登录|Log out/ }).click();

  await login(page, "admin-op");
  await page.goto("/#/merchants");
  await page.getByLabel(/^(原因|Reason)/).fill("new partner");
  await page.getByLabel(/^(商户号|Merchant id)$/).first().fill("e2e-m");
  await page.getByRole("button", { name: /新建商户|Create merchant/ }).click();
  const dialog = page.getByRole("dialog");
  await expect(dialog).toContainText("BEGIN");
  await noSeriousViolations(page);
  await page.screenshot({ path: `${SHOTS}/merchant-keys.png`, fullPage: true });
  await page.keyboard.press("Escape");
  await expect(page.getByTestId("merchants-table")).toContainText("e2e-m");
  await expect(page.getByTestId("audit-table").first()).not.toContainText("BEGIN");
});

test("finance adjusts a wallet with a reason; support may not; both see the ledger", async ({ page }) => {
  const adjust = async (yuan: string, why: string) => {
    await page.goto("/#/users");
    await page.getByLabel(/^(用户 ID|User id)$/).fill("4242");
    await page.getByRole("button", { name: /^(查询|Load)$/ }).click();
    await expect(page.getByTestId("user-membership")).toContainText("middle");
    await page.getByLabel(/调整余额|Adjust/).fill(yuan);
    await page.getByLabel(/^(原因|Reason)/).fill(why);
    await page.getByRole("button", { name: /^(执行|Apply)$/ }).click();
  };
  await login(page, "support-op");
  await adjust("5", "support tries");
  await expect(page.getByRole("alert")).toContainText("PermissionDenied");
  await page.getByRole("button", { name: /退出登录|Log out/ }).click();

  await login(page, "finance-op");
  await adjust("12.34", "goodwill credit");
  await expect(page.getByRole("alert")).toContainText(/已调整|Adjusted/);
  await expect(page.getByTestId("wallet-balance")).toContainText("12.34");
  await expect(page.getByTestId("wallet-entries")).toContainText("goodwill credit");
  await expect(page.getByTestId("audit-table")).toContainText("wallet.credit");
  await noSeriousViolations(page);
  await page.screenshot({ path: `${SHOTS}/users.png`, fullPage: true });
});

test("health shows today per family and runs the ledger check", async ({ page }) => {
  await login(page, "support-op");
  await page.goto("/#/health");
  await expect(page.getByTestId("database")).toContainText(/正常|ready/);
  await expect(page.getByTestId("health-table")).toContainText("001");
  await page.getByRole("button", { name: /账本检查|Ledger check/ }).click();
  await expect(page.getByTestId("ledger")).toContainText(/账本一致|The ledger holds/);
  await noSeriousViolations(page);
  await page.screenshot({ path: `${SHOTS}/health.png`, fullPage: true });
});

test("an admin edits a recharge plan; 002 serves it; a bad document is refused", async ({ page, request }) => {
  await login(page, "admin-op");
  await page.goto("/#/recharge");
  const editor = page.getByLabel(/充值配置|Recharge catalog/);
  await expect(editor).toContainText("money_fen");
  const doc = JSON.parse(await editor.inputValue());
  doc.plans.find((p: { id: number }) => p.id === 10001).money_fen = 43210;
  await editor.fill(JSON.stringify(doc, null, 2));
  await page.getByLabel(/^(原因|Reason)/).fill("plan A price");
  await page.getByRole("button", { name: /^(保存|Save)$/ }).click();
  await expect(page.getByRole("alert")).toContainText(/已保存|Saved/);
  await expect.poll(async () => {
    const served = await (await request.get(`${PUBLIC}/api/recharge`)).json();
    return served.data.rechargeAmount.find((p: { id: number }) => p.id === 10001).price;
  }, { timeout: 10_000 }).toBe("432.1");
  await expect(page.getByTestId("audit-table")).toContainText("plans.1.money_fen: 50000 → 43210");
  await noSeriousViolations(page);
  await page.screenshot({ path: `${SHOTS}/recharge.png`, fullPage: true });
  doc.plans[0].money_fen = -1;
  await editor.fill(JSON.stringify(doc));
  await page.getByRole("button", { name: /^(保存|Save)$/ }).click();
  await expect(page.getByRole("alert")).toContainText("InvalidArgument");
});

test("keyboard only: log in and move between pages", async ({ page }) => {
  await page.goto("/");
  await expect(page.getByLabel(/用户名|Name/)).toBeFocused();  // the name field has the focus
  await page.keyboard.type("support-op");
  await page.keyboard.press("Tab");
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press("Enter");
  await expect(page.getByTestId("operator")).toHaveText("support-op");
  let focused = "";
  for (let i = 0; i < 30 && !/^(订单|Orders)$/.test(focused); i++) {
    await page.keyboard.press("Tab");
    focused = await page.evaluate(() => document.activeElement?.textContent?.trim() ?? "");
  }
  expect(focused).toMatch(/^(订单|Orders)$/);
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(/#\/orders$/);
  await expect(page.getByTestId("orders-table")).toBeVisible();
});

// ---- Users: the grant chain; Recharge: the public JSON preview; Merchants: the balance ledger ----

test("support sees the grant the sandbox-paid order added in the user's grant chain", async ({ page }) => {
  await login(page, "support-op");
  await page.goto("/#/users");
  await page.getByLabel(/^(用户 ID|User id)$/).fill("4242");
  await page.getByRole("button", { name: /^(查询|Load)$/ }).click();
  await expect(page.getByTestId("current-level")).toContainText("middle");
  const chain = page.getByTestId("grant-chain");
  const grant = chain.locator('tr[data-source="vip_order"]');
  await expect(grant).toHaveCount(1);
  await expect(grant).toContainText(/会员订单 \(001\)|VIP order \(001\)/);
  await expect(grant).toContainText("middle");
  const added = Number((await grant.locator("td").nth(4).textContent())!);
  expect(added).toBeGreaterThan(85);  // 3 months, in days
  expect(added).toBeLessThan(93);
  await noSeriousViolations(page);
  await page.screenshot({ path: `${SHOTS}/users-grants.png`, fullPage: true });
});

test("support previews a 002 amount change as the exact public JSON before anything is saved", async ({ page, request }) => {
  await login(page, "support-op");  // reads only: previewing changes nothing
  await page.goto("/#/recharge");
  const editor = page.getByLabel(/充值配置|Recharge catalog/);
  await expect(editor).toContainText("money_fen");
  await expect(page.getByTestId("preview-002")).toContainText('"rechargeAmount"');
  const doc = JSON.parse(await editor.inputValue());
  doc.plans.find((p: { id: number }) => p.id === 10001).money_fen = 43299;
  await editor.fill(JSON.stringify(doc, null, 2));
  await expect(page.getByTestId("preview-002")).toContainText('"price": "432.99"');  // 002's trimmed yuan
  await expect(page.getByTestId("preview-003")).toContainText('"money": "432.99"');  // 003's two decimals
  const served = await (await request.get(`${PUBLIC}/api/recharge`)).json();
  expect(served.data.rechargeAmount.find((p: { id: number }) => p.id === 10001).price).not.toBe("432.99");
  await noSeriousViolations(page);
  await page.screenshot({ path: `${SHOTS}/recharge-preview.png`, fullPage: true });
  doc.plans[0].money_fen = -1;
  await editor.fill(JSON.stringify(doc));
  await expect(page.getByTestId("preview-error")).toContainText("InvalidArgument");
});

test("support reads a merchant's balance ledger: its top-up and its charge", async ({ page }) => {
  await login(page, "support-op");
  await page.goto("/#/merchants");
  await expect(page.getByTestId("merchants-table")).toContainText("sdk-m1");
  await page.getByRole("textbox", { name: /查看流水的商户|Merchant whose ledger/ }).click();
  await page.getByRole("option", { name: "sdk-m1" }).click();
  const ledger = page.getByTestId("balance-ledger");
  await expect(ledger.locator('tr[data-kind="topup"]').first()).toContainText(/充值|Top-up/);
  await expect(ledger.locator('tr[data-kind="charge"]').first()).toContainText(/扣款|Charge/);
  const balance = (await page.getByTestId("merchants-table").getByRole("row").filter({ hasText: "sdk-m1" })
    .locator("td").nth(3).textContent())!;
  await expect(page.getByTestId("ledger-balance")).toContainText(balance);
  await expect(ledger.locator("tbody tr").first().locator("td").nth(3)).toHaveText(balance);  // newest first
  await noSeriousViolations(page);
  await page.screenshot({ path: `${SHOTS}/merchant-ledger.png`, fullPage: true });
});
