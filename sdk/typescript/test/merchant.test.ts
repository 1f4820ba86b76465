import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders } from "node:http";
import { generateKeyPairSync, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import {
  CallbackError, CallbackHandler, MerchantClient, MerchantError, OpenApiStatus, callbackSigningString, verifyCallback,
  type NonceStore, type StatusCallback,
} from "../src/index.js";
import { HTTP, env } from "./stack.js";

const platformKey = () => readFileSync(env("VIPAY_PLATFORM_KEY_FILE"), "utf8");
const me = () => env("VIPAY_MERCHANT_ID");
const rsaClient = () => new MerchantClient(HTTP, { merchantId: me(), businessId: me(),
                                                  privateKeyPem: readFileSync(env("VIPAY_MERCHANT_KEY_FILE"), "utf8") });

test("a signed VIPCharge succeeds; CallbackHandler verifies its status callback and hands over the typed report", async () => {
  const client = rsaClient();
  const claims: string[] = [];
  const store: NonceStore = { claim: (key) => { const fresh = !claims.includes(key); claims.push(key); return fresh; } };
  const handler = new CallbackHandler({ platformPublicKeyPem: platformKey(), merchantId: me(), nonceStore: store });
  let deliver: (c: { report: StatusCallback; headers: IncomingHttpHeaders; body: Buffer }) => void = () => {};
  const arrived = new Promise<{ report: StatusCallback; headers: IncomingHttpHeaders; body: Buffer }>((r) => (deliver = r));
  const raw: { headers: IncomingHttpHeaders; body: Buffer }[] = [];
  const listener = handler.listener((report) => deliver({ report, ...raw[raw.length - 1] }));
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c)).on("end", () => raw.push({ headers: req.headers, body: Buffer.concat(chunks) }));
    listener(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const callbackUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`;
    const reply = await client.vipCharge({ productCode: env("VIPAY_MERCHANT_PRODUCT"),
                                           account: env("VIPAY_MERCHANT_ACCOUNT"), bizCode: `ts-${Date.now()}`, callbackUrl });
    assert.equal(reply.status, 200);
    assert.equal(reply.data?.settlementPrice, 4.51);
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no callback in 20 s")), 20000).unref());
    const { report, headers, body } = await Promise.race([arrived, timeout]);
    assert.equal(report.orderCode, reply.data!.orderCode);
    assert.equal(report.state, "success");
    assert.equal(report.settlementPrice, 4.51);
    assert.equal(report.merchantId, me());
    assert.equal(claims.length, 1, "the pluggable store was asked");
    assert.ok(verifyCallback(platformKey(), headers as Record<string, string>, body, me()));

    // The same report again (a replay): refused by the store.
    await assert.rejects(handler.verify(headers, body), (e) => e instanceof CallbackError && e.reason === "replayed");
    // Tampered body, or another merchant's verifier: the signature does not verify.
    await assert.rejects(new CallbackHandler({ platformPublicKeyPem: platformKey(), merchantId: me() })
      .verify(headers, Buffer.concat([body, Buffer.from(" ")])), (e) => e instanceof CallbackError && e.reason === "bad_signature");
    await assert.rejects(new CallbackHandler({ platformPublicKeyPem: platformKey(), merchantId: "other" }).verify(headers, body),
      (e) => e instanceof CallbackError && e.reason === "bad_signature");
    // Outside the timestamp window (checked before anything else).
    await assert.rejects(new CallbackHandler({ platformPublicKeyPem: platformKey(), merchantId: me(), maxSkewMs: 1 })
      .verify({ ...headers, timestamp: String(Date.now() - 60_000) }, body), (e) => e instanceof CallbackError && e.reason === "stale");
    const order = await client.queryOrder({ orderCode: reply.data!.orderCode });
    assert.equal(order.data?.state, "success");
  } finally {
    server.close();
  }
});

test("CallbackHandler: the default in-memory store refuses a replayed nonce; the listener answers SUCCESS once", async () => {
  // A platform key of our own, signing a report exactly as the server does (same signed text).
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const body = Buffer.from(JSON.stringify({ merchantId: "m1", businessId: "b1", orderCode: "VC1", bizCode: "z", productCode: "p",
    account: "a", settlementPrice: 4.51, state: "failed", status: 4012, message: "x", finishedAt: "2026-01-01 20:00:00",
    addedLater: "ignored" }));
  const timestamp = String(Date.now()), nonce = "n0nce-0001";
  const signature = sign("sha256", callbackSigningString("m1", "b1", timestamp, nonce, body), privateKey).toString("base64");
  const headers = { businessid: "b1", merchantid: "m1", timestamp, nonce, sign: signature, signtype: "SHA256-RSA" };
  const reports: StatusCallback[] = [];
  const handler = new CallbackHandler({ platformPublicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
                                        merchantId: "m1" });
  const server = createServer(handler.listener((r) => { reports.push(r); }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const first = await fetch(url, { method: "POST", headers, body: new Uint8Array(body) });
    assert.equal(first.status, 200);
    assert.equal(await first.text(), "SUCCESS");
    const again = await fetch(url, { method: "POST", headers, body: new Uint8Array(body) });
    assert.equal(again.status, 400);
    assert.equal(await again.text(), "replayed");
    assert.equal(reports.length, 1);
    assert.equal(reports[0].status, OpenApiStatus.ORDER_FAILED);
  } finally {
    server.close();
  }
});

test("MD5 signing: the balance query", async () => {
  const client = new MerchantClient(HTTP, { merchantId: me(), businessId: me(), md5Secret: env("VIPAY_MERCHANT_MD5") });
  const balance = await client.balance();
  assert.equal(balance.status, 200);
  assert.ok((balance.data?.balance ?? 0) > 0);
});

test("a refused order (unknown account) throws MerchantError 4012 with the refunded order in data", async () => {
  await assert.rejects(rsaClient().vipCharge({ productCode: env("VIPAY_MERCHANT_PRODUCT"), account: "nobody-here",
                                               bizCode: `ts-fail-${Date.now()}` }),
    (err) => err instanceof MerchantError && err.status === OpenApiStatus.ORDER_FAILED
      && typeof (err.data as { orderCode?: string }).orderCode === "string");
});
