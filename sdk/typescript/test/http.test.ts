import { test } from "node:test";
import assert from "node:assert/strict";
import { EnvelopeError, HttpError, VipayHttp } from "../src/index.js";
import { HTTP, sandboxReceipt, token } from "./stack.js";

test("001 through Envoy, parsed into the generated types", async () => {
  const http = new VipayHttp(HTTP, { token: token(201) });
  const configs = await http.getVipConfigs();
  assert.equal(configs.switch, true);
  assert.ok(configs.config?.middle?.setting.length);
  const order = await http.createVipOrder({ timezone: "Asia/Shanghai", duration: 3, level: "middle", pay_method: "WechatPay_App" });
  assert.equal(order.duration, "3");
  assert.equal(order.payDataWechat?.package, "Sign=WXPay");
  assert.ok(order.payDataWechat?.appid);
  const listed = await http.listVipOrders({ offset: 0, limit: 15 });
  assert.deepEqual(listed.map((o) => o.id), [order.id]);
  assert.equal((await http.getVipOrder(order.id)).tradeNo, order.tradeNo);
  assert.equal((await http.checkVipOrder(order.id)).status, false);
  await http.deleteVipOrder(order.id);
  await assert.rejects(http.getVipOrder(order.id), (err) => err instanceof HttpError && err.status === 404);
  assert.match(await http.getVipProtocol(), /</);
  assert.equal((await new VipayHttp(HTTP).getBootstrappers()).vipSwitch, true);
});

test("001 in-app purchase: checkIapResult pays the order, then exchangeVip converts it", async () => {
  const http = new VipayHttp(HTTP, { token: token(203) });
  const iap = await http.createVipOrder({ timezone: "Asia/Shanghai", duration: 3, level: "low", pay_method: "Iap" });
  const paid = await http.checkIapResult(iap.id, sandboxReceipt(iap.id));
  assert.equal(paid.id, iap.id);
  assert.equal(paid.payStatus, 1);
  assert.equal((await http.checkVipOrder(iap.id)).status, true);
  assert.ok((await http.exchangeVip("high")).convertedDays > 0);
  assert.equal((await http.getMyMembership()).currentLevel, "high");
});

test("001 refusals: 403 from exchange-vip, 401 without a token (Access-Token works too)", async () => {
  await assert.rejects(new VipayHttp(HTTP, { accessToken: token(202) }).exchangeVip("high"),
    (err) => err instanceof HttpError && err.status === 403 && !!err.body.message);
  await assert.rejects(new VipayHttp(HTTP).getMyMembership(), (err) => err instanceof HttpError && err.status === 401);
  const mine = await new VipayHttp(HTTP, { accessToken: token(202) }).getMyMembership();
  assert.equal(mine.userId, 202);
  assert.equal(mine.isVip, false);
});

test("000 and 003 envelopes parse into their messages", async () => {
  const index = await new VipayHttp(HTTP).getChargeIndex();
  assert.equal(index.c, 0);
  assert.ok(index.d);
  const center = await new VipayHttp(HTTP, { accessToken: token(10125) }).getRechargeCenter(10001, "H5");
  assert.equal(center.status, 200);
  assert.ok(center.data?.setting);
});

test("002: a recharge history page, and refusals as EnvelopeError (HTTP 200 envelopes)", async () => {
  const history = await new VipayHttp(HTTP, { token: token(203) }).getRechargeHistory({ page: 1, rows: 10 });
  assert.equal(history.success, true);
  assert.equal(history.code, 0);
  await assert.rejects(new VipayHttp(HTTP).getRechargeHistory(), (err) => err instanceof EnvelopeError && err.code === 401);
  await assert.rejects(new VipayHttp(HTTP, { token: token(203) }).getRechargeHistory({ rows: 1000 }),
    (err) => err instanceof EnvelopeError && err.code === 400);
  await assert.rejects(new VipayHttp(HTTP).createChargePayment(1, "alipay"),
    (err) => err instanceof EnvelopeError && err.code === 401);
});
