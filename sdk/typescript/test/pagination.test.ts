// Pagination iterators: 001 orders (offset/limit), 002 history (page/rows), wallet (page_token).
import { test } from "node:test";
import assert from "node:assert/strict";
import { VipayHttp, grpcTransport, walletClient, walletEntries } from "../src/index.js";
import { GRPC, HTTP, token } from "./stack.js";

test("001: vipOrders walks every page of offset/limit", async () => {
  const http = new VipayHttp(HTTP, { token: token(401) });
  const ids: number[] = [];
  for (let i = 0; i < 5; i++) {
    ids.push((await http.createVipOrder({ timezone: "Asia/Shanghai", duration: 3, level: "middle", pay_method: "Alipay_AopApp" })).id);
  }
  const seen: number[] = [];
  for await (const order of http.vipOrders({ limit: 2 })) seen.push(order.id);
  assert.deepEqual(seen.sort(), ids.sort());
});

test("002: rechargeHistory walks every page of page/rows", async () => {
  const http = new VipayHttp(HTTP, { token: token(402) });
  const amount = (await http.getRecharge()).data!.rechargeAmount[0];
  const numbers: string[] = [];
  for (let i = 0; i < 5; i++) {
    const order = await http.createRechargeOrder({ id: amount.id, price: amount.price, payModeId: amount.payModes[0].id });
    numbers.push(order.data!.orderNumber);
  }
  const seen: string[] = [];
  for await (const record of http.rechargeHistory({ rows: 2 })) seen.push(record.orderNumber);
  assert.deepEqual(seen.sort(), numbers.sort());
});

test("wallet: walletEntries follows next_page_token to the last page", async () => {
  const wallet = walletClient(grpcTransport(GRPC, token(0, "service")));
  const userId = 403n;
  for (let i = 0; i < 5; i++) {
    await wallet.creditWallet({ userId, amountFen: 10n, reference: `page:${i}`, requestId: `ts-page-${i}` });
  }
  const entries = [];
  for await (const entry of walletEntries(wallet, { userId, pageSize: 2 })) entries.push(entry);
  assert.equal(entries.length, 5);
  assert.equal(new Set(entries.map((e) => e.id)).size, 5);
});
