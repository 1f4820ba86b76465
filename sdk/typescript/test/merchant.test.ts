import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders } from "node:http";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { MerchantClient, verifyCallback } from "../src/index.js";
import { HTTP, env } from "./stack.js";

const platformKey = () => readFileSync(env("VIPAY_PLATFORM_KEY_FILE"), "utf8");

test("a signed VIPCharge succeeds and its status callback verifies", async () => {
  const client = new MerchantClient(HTTP, { merchantId: env("VIPAY_MERCHANT_ID"), businessId: env("VIPAY_MERCHANT_ID"),
                                            privateKeyPem: readFileSync(env("VIPAY_MERCHANT_KEY_FILE"), "utf8") });
  // The merchant's callback endpoint: answers SUCCESS, as docs/openapi.md asks.
  let deliver: (c: { headers: IncomingHttpHeaders; body: Buffer }) => void = () => {};
  const arrived = new Promise<{ headers: IncomingHttpHeaders; body: Buffer }>((resolve) => (deliver = resolve));
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      res.end("SUCCESS");
      deliver({ headers: req.headers, body: Buffer.concat(chunks) });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const callbackUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`;
    const reply = await client.vipCharge({ productCode: env("VIPAY_MERCHANT_PRODUCT"),
                                           account: env("VIPAY_MERCHANT_ACCOUNT"), bizCode: `ts-${Date.now()}`, callbackUrl });
    assert.equal(reply.status, 200);
    assert.equal(reply.data?.settlementPrice, 4.51);
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no callback in 20 s")), 20000).unref());
    const callback = await Promise.race([arrived, timeout]);
    const headers = callback.headers as Record<string, string>;
    const me = env("VIPAY_MERCHANT_ID");
    assert.ok(verifyCallback(platformKey(), headers, callback.body, me), "the platform's signature verifies");
    assert.ok(callback.body.toString().includes(reply.data!.orderCode));
    assert.ok(!verifyCallback(platformKey(), headers, Buffer.concat([callback.body, Buffer.from(" ")]), me), "tampered body");
    assert.ok(!verifyCallback(platformKey(), { ...headers, merchantid: "other" }, callback.body, "other"),
              "another merchant cannot accept it");
    const order = await client.queryOrder({ orderCode: reply.data!.orderCode });
    assert.equal(order.data?.state, "success");
  } finally {
    server.close();
  }
});

test("MD5 signing: the balance query", async () => {
  const client = new MerchantClient(HTTP, { merchantId: env("VIPAY_MERCHANT_ID"), businessId: env("VIPAY_MERCHANT_ID"),
                                            md5Secret: env("VIPAY_MERCHANT_MD5") });
  const balance = await client.balance();
  assert.equal(balance.status, 200);
  assert.ok((balance.data?.balance ?? 0) > 0);
});

test("a wrong signature is refused in the 004 envelope", async () => {
  const client = new MerchantClient(HTTP, { merchantId: env("VIPAY_MERCHANT_ID"), businessId: env("VIPAY_MERCHANT_ID"),
                                            md5Secret: "not-the-secret" });
  const refused = await client.balance();
  assert.notEqual(refused.status, 200);
  assert.equal(refused.data, undefined);
});
