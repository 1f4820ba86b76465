// Forward compatibility, typed errors and retries of the TypeScript SDK.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http2";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  EnvelopeError, ErrorReason, GrpcError, HttpError, MerchantClient, MerchantError, MembershipHttpStatus, NetworkError,
  OpenApiStatus, RechargeCode, VipayHttp, backoffMs, grpcTransport, walletClient, wallet as w,
} from "../src/index.js";
import { HTTP, GRPC, env, token } from "./stack.js";
import { fixedServer, flakyProxy } from "./proxy.js";

const merchant = (base: string, extra = {}) => new MerchantClient(base, {
  merchantId: env("VIPAY_MERCHANT_ID"), businessId: env("VIPAY_MERCHANT_ID"),
  privateKeyPem: readFileSync(env("VIPAY_MERCHANT_KEY_FILE"), "utf8"), retry: { baseDelayMs: 10 }, ...extra });
const fast = { retry: { baseDelayMs: 10 } };

test("unknown response fields are ignored (001, 002, 004): adding a field breaks no client", async () => {
  const configs = await fixedServer({ status: 200, headers: { "content-type": "application/json" },
    body: JSON.stringify({ switch: true, currency: "CNY", config: { middle: { setting: [], newThing: 1 } } }) });
  const history = await fixedServer({ status: 200, body: JSON.stringify(
    { message: "ok", success: true, code: 0, data: { total: 0, rows: [], cursor: "x" }, traceId: "t" }) });
  const balance = await fixedServer({ status: 200, body: JSON.stringify(
    { status: 200, message: "success", data: { merchantId: "m", balance: 1.5, currency: "CNY" }, extra: [1] }) });
  try {
    const c = await new VipayHttp(configs.url).getVipConfigs();
    assert.equal(c.switch, true);
    const h = await new VipayHttp(history.url).getRechargeHistory();
    assert.equal(h.data?.total, 0);
    const b = await merchant(balance.url).balance();
    assert.equal(b.data?.balance, 1.5);
  } finally {
    await Promise.all([configs.close(), history.close(), balance.close()]);
  }
});

test("typed errors: 004 status, 001 HTTP status, 002 code, gRPC reason — each with the request id", async () => {
  const wrongKey = new MerchantClient(HTTP, { merchantId: env("VIPAY_MERCHANT_ID"), businessId: env("VIPAY_MERCHANT_ID"),
                                              md5Secret: "not-the-secret" });
  await assert.rejects(wrongKey.balance(), (err) => {
    assert.ok(err instanceof MerchantError);
    assert.equal(err.status, OpenApiStatus.SIGN_INVALID);
    assert.equal(err.statusName, "SIGN_INVALID");
    assert.match(err.requestId, /^[0-9a-f-]{16,}$/);
    return true;
  });
  await assert.rejects(merchant(HTTP).queryOrder({ bizCode: "no-such-order" }),
    (err) => err instanceof MerchantError && err.status === OpenApiStatus.ORDER_NOT_FOUND);
  await assert.rejects(new VipayHttp(HTTP).getMyMembership(), (err) => {
    assert.ok(err instanceof HttpError);
    assert.equal(err.status, MembershipHttpStatus.UNAUTHENTICATED);
    assert.equal(err.statusName, "UNAUTHENTICATED");
    assert.ok(err.requestId);
    return true;
  });
  await assert.rejects(new VipayHttp(HTTP, { token: token(301) }).getRechargeHistory({ rows: 1000 }), (err) => {
    assert.ok(err instanceof EnvelopeError);
    assert.equal(err.code, RechargeCode.BAD_REQUEST);
    assert.equal(err.codeName, "BAD_REQUEST");
    assert.ok(err.requestId);
    return true;
  });
  const wallet = walletClient(grpcTransport(GRPC, token(0, "service")));
  await assert.rejects(wallet.debitWallet({ userId: 302n, amountFen: 1n, reference: "o:ts-typed", requestId: "ts-typed-1" }),
    (err) => {
      assert.ok(err instanceof GrpcError);
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.FailedPrecondition);
      assert.equal(err.reason, ErrorReason.INSUFFICIENT_BALANCE);
      assert.equal(err.reasonName, "INSUFFICIENT_BALANCE");
      assert.match(err.requestId, /^[0-9a-f]{32}$/);
      return true;
    });
});

test("004 retry: 503 twice, then the charge goes through once — same body and bizCode, fresh nonce and timestamp", async () => {
  const proxy = await flakyProxy(HTTP, 2);
  try {
    const before = (await merchant(HTTP).balance()).data!.balance;
    const bizCode = `ts-retry-${Date.now()}`;
    const reply = await merchant(proxy.url).vipCharge({ productCode: env("VIPAY_MERCHANT_PRODUCT"),
                                                        account: env("VIPAY_MERCHANT_ACCOUNT"), bizCode });
    assert.equal(reply.data?.bizCode, bizCode);
    assert.equal(proxy.seen.length, 3);
    assert.equal(new Set(proxy.seen.map((s) => s.body.toString())).size, 1, "the same bytes every attempt");
    assert.equal(new Set(proxy.seen.map((s) => s.headers["nonce"])).size, 3, "a new nonce per attempt");
    assert.equal(new Set(proxy.seen.map((s) => s.headers["sign"])).size, 3);
    const after = (await merchant(HTTP).balance()).data!.balance;
    assert.equal(Math.round((before - after) * 100), 451, "charged once");
  } finally {
    await proxy.close();
  }
});

test("004 retry of 5000, and 429 waits at least its Retry-After", async () => {
  const internal = await flakyProxy(HTTP, 1, { status: 500, body: JSON.stringify({ status: 5000, message: "internal error", data: null }) });
  const limited = await flakyProxy(HTTP, 1, { status: 429, headers: { "retry-after": "1" }, body: "slow down" });
  try {
    assert.equal((await merchant(internal.url).balance()).status, 200);
    assert.equal(internal.seen.length, 2);
    assert.equal((await new VipayHttp(limited.url, {}, fast).getVipConfigs()).switch, true);
    assert.equal(limited.seen.length, 2);
    assert.ok(limited.seen[1].at - limited.seen[0].at >= 950, "waited for Retry-After");
  } finally {
    await Promise.all([internal.close(), limited.close()]);
  }
});

test("retries stop at the maximum, and what is not idempotent is never retried", async () => {
  const down = await flakyProxy(HTTP, 100);
  try {
    await assert.rejects(new VipayHttp(down.url, {}, { retry: { maxRetries: 3, baseDelayMs: 5 } }).getVipConfigs(),
      (err) => err instanceof HttpError && err.status === 503 && !!err.requestId);
    assert.equal(down.seen.length, 4);
    down.seen.length = 0;
    const user = new VipayHttp(down.url, { token: token(303) }, fast);
    await assert.rejects(user.createVipOrder({ timezone: "Asia/Shanghai", duration: 3, level: "low", pay_method: "Alipay_AopApp" }),
      (err) => err instanceof HttpError && err.status === 503);
    await assert.rejects(user.createChargePayment(1, "alipay"), (err) => err instanceof EnvelopeError && err.code === 503);
    assert.equal(down.seen.length, 2, "one attempt each");
  } finally {
    await down.close();
  }
  const flaky = await flakyProxy(HTTP, 1);
  try {
    const order = await new VipayHttp(flaky.url, { token: token(303) }, fast).createVipOrder(
      { timezone: "Asia/Shanghai", duration: 3, level: "low", pay_method: "Alipay_AopApp", request_id: `ts-${Date.now()}` });
    assert.ok(order.id > 0, "with a request_id the create is retried");
    assert.equal(flaky.seen.length, 2);
  } finally {
    await flaky.close();
  }
});

test("network errors: retried, then a NetworkError with the request id; the timeout applies", async () => {
  const closed = await fixedServer({ status: 200, body: "{}" });
  await closed.close();
  await assert.rejects(new VipayHttp(closed.url, {}, fast).getVipConfigs(),
    (err) => err instanceof NetworkError && /^[0-9a-f]{32}$/.test(err.requestId));
  const started = Date.now();
  const slow = await import("node:http").then(({ createServer }) => createServer(() => {}));
  await new Promise<void>((resolve) => slow.listen(0, "127.0.0.1", resolve));
  try {
    const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}`;
    await assert.rejects(new VipayHttp(url, {}, { timeoutMs: 200, retry: { maxRetries: 0 } }).getVipConfigs(),
      (err) => err instanceof NetworkError && /200 ms/.test(err.message));
    assert.ok(Date.now() - started < 5000);
  } finally {
    slow.closeAllConnections();
    slow.close();
  }
});

test("backoff grows exponentially with jitter, capped, and honours Retry-After", () => {
  for (let i = 0; i < 50; i++) {
    const d0 = backoffMs(0, { baseDelayMs: 100 }), d3 = backoffMs(3, { baseDelayMs: 100 });
    assert.ok(d0 >= 50 && d0 <= 100 && d3 >= 400 && d3 <= 800, `${d0} ${d3}`);
    assert.ok(backoffMs(20, { baseDelayMs: 100, maxDelayMs: 1000 }) <= 1000);
    assert.ok(backoffMs(0, { baseDelayMs: 100 }, 2) >= 2000);
  }
  const spread = new Set(Array.from({ length: 20 }, () => backoffMs(2)));
  assert.ok(spread.size > 10, "jitter");
});

test("gRPC retry: a server failing the first attempts with UNAVAILABLE; non-idempotent calls are not retried", async () => {
  let calls = 0;
  const routes = (router: ConnectRouter) => router.service(w.WalletService, {
    async getWallet() {
      calls++;
      if (calls <= 2) throw new ConnectError("warming up", Code.Unavailable);
      return { balanceFen: 7n, entries: [], nextPageToken: "" };
    },
    async debitWallet(req: { requestId: string }) {
      calls++;
      throw new ConnectError(`down (${req.requestId || "no request id"})`, Code.Unavailable);
    },
  } as never);
  const server = createServer(connectNodeAdapter({ routes }));
  const sessions = new Set<import("node:http2").ServerHttp2Session>();
  server.on("session", (s) => sessions.add(s));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const wallet = walletClient(grpcTransport(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, "t", fast));
    assert.equal((await wallet.getWallet({ userId: 1n })).balanceFen, 7n);
    assert.equal(calls, 3);
    calls = 0;
    await assert.rejects(wallet.debitWallet({ userId: 1n, amountFen: 1n, reference: "r" }),
      (err) => err instanceof GrpcError && err.code === Code.Unavailable);
    assert.equal(calls, 1, "no request_id: not retried");
    calls = 0;
    await assert.rejects(wallet.debitWallet({ userId: 1n, amountFen: 1n, reference: "r", requestId: "q-1" }));
    assert.equal(calls, 3, "with a request_id: retried up to the maximum");
  } finally {
    for (const s of sessions) s.destroy();
    server.close();
  }
});
