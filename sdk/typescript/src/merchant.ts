// api-docs/004 for merchants: request signing and status-callback verification
// (mirrors clients/merchant_client.py and docs/openapi.md).
import { createHmac, createPublicKey, randomBytes, sign, verify } from "node:crypto";
import { fromJson, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import * as op from "../gen/vipay/openapi/v1/openapi_charge_pb.js";

export const CHARGE_PATH = "/v1/openapi/order/VIPCharge";
export const QUERY_ORDER_PATH = "/v1/openapi/order/query";
export const BALANCE_PATH = "/v1/openapi/merchant/balance";

/** Six lines, each ending in \n: METHOD, PATH, businessId, timestamp, nonce, body (verbatim). */
export function signingString(method: string, path: string, businessId: string, timestamp: string, nonce: string,
                              body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([method, path, businessId, timestamp, nonce].join("\n") + "\n"), body, Buffer.from("\n")]);
}

/** CALLBACK, merchantId, businessId, timestamp, nonce, body: the merchantId line binds a report to its merchant. */
export function callbackSigningString(merchantId: string, businessId: string, timestamp: string, nonce: string,
                                      body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(["CALLBACK", merchantId, businessId, timestamp, nonce].join("\n") + "\n"), body,
                        Buffer.from("\n")]);
}

/** SHA256-RSA (PKCS#1 v1.5) with the merchant's private key, base64. */
export const signRsa = (privateKeyPem: string, message: Buffer) => sign("sha256", message, privateKeyPem).toString("base64");
/** MD5: HMAC-MD5 with the merchant's secret, hex. */
export const signMd5 = (secret: string, message: Buffer) => createHmac("md5", secret).update(message).digest("hex");

/** True when a status callback really comes from the platform, is fresh and is for YOUR merchantId (pass your
 * own, never one read from the request: one platform key signs every merchant's reports, and this is what
 * refuses another merchant's report replayed to you). Header names in any case; remember the nonces you
 * accepted to refuse replays. */
export function verifyCallback(platformPublicKeyPem: string, headers: Record<string, string | string[] | undefined>,
                               body: Buffer, merchantId: string, maxSkewMs = 5 * 60 * 1000): boolean {
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (typeof v === "string") h[k.toLowerCase()] = v;
  const { timestamp, nonce, businessid, sign: signature } = h;
  if (!timestamp || !nonce || !businessid || !signature || !/^[0-9]+$/.test(timestamp)) return false;
  if (Math.abs(Date.now() - Number(timestamp)) > maxSkewMs) return false;
  try {
    return verify("sha256", callbackSigningString(merchantId, businessid, timestamp, nonce, body),
                  createPublicKey(platformPublicKeyPem), Buffer.from(signature, "base64"))
      && JSON.parse(body.toString("utf8")).merchantId === merchantId;
  } catch {
    return false;
  }
}

export interface MerchantOptions {
  merchantId: string;
  businessId: string;
  privateKeyPem?: string;
  md5Secret?: string;
  signType?: "SHA256-RSA" | "MD5";
}

export class MerchantClient {
  readonly signType: "SHA256-RSA" | "MD5";

  constructor(readonly baseUrl: string, readonly options: MerchantOptions) {
    this.signType = options.signType ?? (options.privateKeyPem ? "SHA256-RSA" : "MD5");
  }

  signedHeaders(path: string, body: Buffer, nonce = randomBytes(16).toString("hex"),
                timestamp = String(Date.now())): Record<string, string> {
    const message = signingString("POST", path, this.options.businessId, timestamp, nonce, body);
    const signature = this.signType === "SHA256-RSA"
      ? signRsa(this.options.privateKeyPem ?? "", message) : signMd5(this.options.md5Secret ?? "", message);
    return { "content-type": "application/json; charset=utf-8", businessId: this.options.businessId, nonce, timestamp,
             sign: signature, signType: this.signType };
  }

  /** Signs the exact bytes sent; answers {"status", "message", "data"} (HTTP 200 for refusals too). */
  async post<T extends DescMessage>(schema: T, path: string, payload: Record<string, string>) {
    const body = Buffer.from(JSON.stringify(payload));
    const res = await fetch(this.baseUrl.replace(/\/$/, "") + path, { method: "POST", body, headers: this.signedHeaders(path, body) });
    return fromJson(schema, (await res.json()) as JsonValue);
  }

  vipCharge(args: { productCode: string; account: string; bizCode: string; mobile?: string; callbackUrl?: string }) {
    const { merchantId, businessId } = this.options;
    const body: Record<string, string> = { merchantId, businessId, productCode: args.productCode, account: args.account,
                                           bizCode: args.bizCode };
    if (args.mobile) body.mobile = args.mobile;
    if (args.callbackUrl) body.callbackUrl = args.callbackUrl;
    return this.post(op.VipChargeResponseSchema, CHARGE_PATH, body);
  }

  queryOrder(by: { bizCode?: string; orderCode?: string }) {
    const { merchantId, businessId } = this.options;
    return this.post(op.QueryOrderResponseSchema, QUERY_ORDER_PATH, {
      merchantId, businessId, ...(by.bizCode ? { bizCode: by.bizCode } : {}), ...(by.orderCode ? { orderCode: by.orderCode } : {}),
    });
  }

  balance() {
    const { merchantId, businessId } = this.options;
    return this.post(op.QueryBalanceResponseSchema, BALANCE_PATH, { merchantId, businessId });
  }
}
