// api-docs/004 for merchants: request signing, typed refusals, retries (the same body and
// bizCode, a fresh nonce and timestamp per attempt), and status-callback verification
// (callback.ts). Mirrors docs/openapi.md.
import { createHmac, randomBytes, sign } from "node:crypto";
import { type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import * as op from "../gen/vipay/openapi/v1/openapi_charge_pb.js";
import { MerchantError, OpenApiStatus } from "./errors.js";
import { parse } from "./http.js";
import { withRetries, type CallOptions } from "./retry.js";
import { jsonOf, send } from "./transport.js";

export const CHARGE_PATH = "/v1/openapi/order/VIPCharge";
export const QUERY_ORDER_PATH = "/v1/openapi/order/query";
export const BALANCE_PATH = "/v1/openapi/merchant/balance";

/** Six lines, each ending in \n: METHOD, PATH, businessId, timestamp, nonce, body (verbatim). */
export function signingString(method: string, path: string, businessId: string, timestamp: string, nonce: string,
                              body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([method, path, businessId, timestamp, nonce].join("\n") + "\n"), body, Buffer.from("\n")]);
}

/** SHA256-RSA (PKCS#1 v1.5) with the merchant's private key, base64. */
export const signRsa = (privateKeyPem: string, message: Buffer) => sign("sha256", message, privateKeyPem).toString("base64");
/** MD5: HMAC-MD5 with the merchant's secret, hex. */
export const signMd5 = (secret: string, message: Buffer) => createHmac("md5", secret).update(message).digest("hex");

export interface MerchantOptions extends CallOptions {
  merchantId: string;
  businessId: string;
  privateKeyPem?: string;
  md5Secret?: string;
  signType?: "SHA256-RSA" | "MD5";
}

/** Success bodies: {"status": 200, "message", "data"}. Refusals throw MerchantError. */
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

  /** Signs the exact bytes sent. Every 004 call is safe to repeat (the charge is idempotent by
   * bizCode, the others read), so network errors, 429/503 and 5000 are retried, each attempt
   * with a new nonce and timestamp (a nonce is accepted once). */
  async post<T extends DescMessage>(schema: T, path: string, payload: Record<string, string>): Promise<MessageShape<T>> {
    const body = Buffer.from(JSON.stringify(payload));
    const url = this.baseUrl.replace(/\/$/, "") + path;
    return withRetries(true, this.options.retry, async () => {
      const a = await send(url, { method: "POST", body, headers: this.signedHeaders(path, body) }, this.options.timeoutMs);
      const json = jsonOf(a.text) as { status?: unknown; message?: unknown; data?: unknown } | undefined;
      const status = typeof json?.status === "number" ? json.status : (a.status === 200 ? 0 : a.status);
      if (status !== OpenApiStatus.SUCCESS) {
        const code = a.status >= 500 && typeof json?.status !== "number" ? OpenApiStatus.INTERNAL : status;
        throw new MerchantError(code, String(json?.message ?? a.text.slice(0, 200)), json?.data ?? null, a.requestId,
                                a.retryAfter);
      }
      return parse(schema, json);
    });
  }

  /** Buys a membership. A failed order (unknown account, refunded) throws MerchantError 4012
   * (OpenApiStatus.ORDER_FAILED) with the order in `data`. */
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
