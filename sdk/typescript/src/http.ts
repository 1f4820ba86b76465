// Typed helpers for the HTTP paths (through Envoy). Answers are parsed into the generated
// message types, ignoring fields this SDK does not know yet (adding a response field is a
// compatible change: docs/versioning.md). Refusals throw typed errors (errors.ts).
import { fromJson, type DescMessage, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import * as mp from "../gen/vipay/membership/v1/membership_pb.js";
import * as rp from "../gen/vipay/recharge/v1/recharge_pb.js";
import { EnvelopeError, HttpError, type Family } from "./errors.js";
import { withRetries, type CallOptions } from "./retry.js";
import { jsonOf, send, type Answer } from "./transport.js";

export { EnvelopeError, HttpError };

/** Parse options every SDK call uses: unknown fields are ignored (forward compatibility). */
export const PARSE = { ignoreUnknownFields: true } as const;

export function parse<T extends DescMessage>(schema: T, json: unknown): MessageShape<T> {
  return fromJson(schema, json as JsonValue, PARSE);
}

/** The envelope's refusal, if the body is one (checked before parsing into the success type). */
function refusal(family: Family, body: Record<string, unknown>, a: Answer): EnvelopeError | undefined {
  if (family === "000" && body.c !== 0) return new EnvelopeError(Number(body.c), String(body.m), body.d, a.requestId, family, a.retryAfter);
  if (family === "002" && body.success !== true)
    return new EnvelopeError(Number(body.code), String(body.message), body.data, a.requestId, family, a.retryAfter);
  if (family === "003" && body.status !== 200)
    return new EnvelopeError(Number(body.status), String(body.message), body.data, a.requestId, family, a.retryAfter);
  return undefined;
}

export interface Credentials {
  /** A JWT sent as `Authorization: Bearer` (or use accessToken for the Access-Token header). */
  token?: string;
  accessToken?: string;
}

export interface CreateVipOrder {
  timezone: string;
  duration: number;
  level: "low" | "middle" | "high";
  pay_method: "Alipay_AopApp" | "Alipay_AopWap" | "Alipay_AopPage" | "WechatPay_App" | "WechatPay_Js" | "Iap";
  quantity?: number;
  /** Idempotency key (AIP-155): with it the call is retried safely; without it, never. */
  request_id?: string;
  openid?: string;
}

type Query = Record<string, string | number | undefined>;
const qs = (query: Query) => {
  const s = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined)
    .map(([k, v]) => [k, String(v)])).toString();
  return s ? `?${s}` : "";
};

export class VipayHttp {
  constructor(readonly baseUrl: string, readonly credentials: Credentials = {}, readonly options: CallOptions = {}) {}

  /** One call: retried (fresh attempt, same request) only when `idempotent`. */
  async request<T>(method: string, path: string, handle: (a: Answer) => T,
                   init: { body?: unknown; headers?: Record<string, string>; idempotent?: boolean } = {}): Promise<T> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.credentials.token) headers["authorization"] = `Bearer ${this.credentials.token}`;
    if (this.credentials.accessToken) headers["access-token"] = this.credentials.accessToken;
    if (init.body !== undefined) headers["content-type"] = "application/json";
    const body = init.body === undefined ? undefined : JSON.stringify(init.body);
    const idempotent = init.idempotent ?? (method === "GET");
    return withRetries(idempotent, this.options.retry, async () =>
      handle(await send(this.baseUrl.replace(/\/$/, "") + path, { method, headers, body }, this.options.timeoutMs)));
  }

  /** 001: the statuses in `ok` parse into `schema`; any other throws HttpError. */
  private membership<T extends DescMessage>(schema: T, ok: number) {
    return (a: Answer): MessageShape<T> => {
      const body = jsonOf(a.text);
      if (a.status !== ok) throw httpError(a, body);
      return parse(schema, body);
    };
  }

  // --- 001 membership ---
  /** Start-up flags (public): `vipSwitch`. */
  getBootstrappers() {
    return this.request("GET", "/api/v2/bootstrappers", this.membership(mp.GetBootstrappersResponseSchema, 200));
  }
  getVipConfigs() {
    return this.request("GET", "/api/v2/vip/configs", this.membership(mp.GetVipConfigsResponseSchema, 200));
  }
  /** 201 Created: the order and its pay_data. Retried only when `request_id` is given. */
  createVipOrder(order: CreateVipOrder) {
    return this.request("POST", "/api/v2/vip/orders", this.membership(mp.CreateVipOrderResponseSchema, 201),
                        { body: order, idempotent: !!order.request_id });
  }
  /** One page: the bare JSON array the document shows. */
  listVipOrders(query: { offset?: number; limit?: number; s?: string; d?: string; timezone?: string } = {}) {
    return this.request("GET", "/api/v2/vip/orders" + qs(query), (a) => {
      const body = jsonOf(a.text);
      if (a.status !== 200) throw httpError(a, body);
      return (body as unknown[]).map((o) => parse(mp.VipOrderSchema, o));
    });
  }
  /** Every order, page after page (offset/limit), newest first. */
  async *vipOrders(query: { limit?: number; s?: string; d?: string; timezone?: string } = {}) {
    const limit = query.limit ?? 15;
    for (let offset = 0; ; offset += limit) {
      const page = await this.listVipOrders({ ...query, offset, limit });
      yield* page;
      if (page.length < limit) return;
    }
  }
  getVipOrder(id: number) {
    return this.request("GET", `/api/v2/vip/orders/${id}`, this.membership(mp.VipOrderSchema, 200));
  }
  /** 204 No Content. Not retried (a second delete answers 404). */
  deleteVipOrder(id: number): Promise<void> {
    return this.request("DELETE", `/api/v2/vip/orders/${id}`, (a) => {
      if (a.status !== 204) throw httpError(a, jsonOf(a.text));
    });
  }
  /** 201 Created, or HttpError 403 when there is nothing to convert. Not retried. */
  exchangeVip(level: string) {
    return this.request("PATCH", "/api/v2/vip/exchange-vip", this.membership(mp.ExchangeVipResponseSchema, 201),
                        { body: { level } });
  }
  /** Verifies an App Store purchase for an `Iap` order and answers the order; HttpError 500 when
   *  the App Store did not confirm it. Retried: a paid order answers itself again. */
  checkIapResult(id: number, receipt: string) {
    return this.request("POST", `/api/v2/vip/check-iap-result/${id}`, this.membership(mp.VipOrderSchema, 200),
                        { body: { receipt }, idempotent: true });
  }
  checkVipOrder(id: number) {
    return this.request("GET", `/api/v2/vip/check-order/${id}`, this.membership(mp.CheckVipOrderResponseSchema, 200));
  }
  getMyMembership() {
    return this.request("GET", "/api/v2/vip/membership", this.membership(mp.MembershipStatusSchema, 200));
  }
  /** text/html. */
  getVipProtocol(): Promise<string> {
    return this.request("GET", "/api/v2/vip/protocol", (a) => {
      if (a.status !== 200) throw httpError(a, jsonOf(a.text));
      return a.text;
    });
  }

  // --- 000 / 002 / 003 recharge: refusals arrive as HTTP 200 envelopes and throw EnvelopeError ---
  private enveloped<T extends DescMessage>(family: Family, schema: T) {
    return (a: Answer): MessageShape<T> => {
      const body = jsonOf(a.text) as Record<string, unknown> | undefined;
      if (a.status !== 200 || !body || typeof body !== "object") {
        throw new EnvelopeError(a.status, String(body?.message ?? a.text.slice(0, 200)), body, a.requestId, "http", a.retryAfter);
      }
      const refused = refusal(family, body, a);
      if (refused) throw refused;
      return parse(schema, body);
    };
  }
  getChargeIndex() {
    return this.request("GET", "/charge/index", this.enveloped("000", rp.GetChargeIndexResponseSchema));
  }
  /** Not retried (creates a payment). */
  createChargePayment(id: number, payType: string) {
    return this.request("POST", "/charge/pay", this.enveloped("000", rp.CreateChargePaymentResponseSchema),
                        { body: { id, payType } });
  }
  getRecharge() {
    return this.request("GET", "/api/recharge", this.enveloped("002", rp.GetRechargeResponseSchema));
  }
  /** Not retried (creates an order). */
  createRechargeOrder(order: { id?: number; price: string; payModeId: number; goodsId?: number;
                               _verifyCode?: string; openid?: string }) {
    return this.request("POST", "/api/recharge/order", this.enveloped("002", rp.CreateRechargeOrderResponseSchema),
                        { body: order });
  }
  /** One page (page is 1-based). */
  getRechargeHistory(query: { page?: number; rows?: number; startDate?: string; endDate?: string;
                              orderState?: string } = {}) {
    return this.request("GET", "/api/recharge/history" + qs(query), this.enveloped("002", rp.GetRechargeHistoryResponseSchema));
  }
  /** Every record matching the filters, page after page. */
  async *rechargeHistory(query: { rows?: number; startDate?: string; endDate?: string; orderState?: string } = {}) {
    const rows = query.rows ?? 20;
    for (let page = 1, seen = 0; ; page++) {
      const data = (await this.getRechargeHistory({ ...query, page, rows })).data;
      const records = data?.rows ?? [];
      yield* records;
      seen += records.length;
      if (records.length < rows || seen >= (data?.total ?? 0)) return;
    }
  }
  /** 003: the route travels in the query (/index.php?s=...). */
  getRechargeCenter(storeId: number, platform: string, client = platform) {
    const path = `/index.php?s=/api/recharge/center&client=${encodeURIComponent(client)}`;
    return this.request("GET", path, this.enveloped("003", rp.GetRechargeCenterResponseSchema),
                        { headers: { storeId: String(storeId), platform } });
  }
}

function httpError(a: Answer, body: unknown): HttpError {
  const b = body && typeof body === "object" ? body as { message?: string } : { message: a.text.slice(0, 200) };
  return new HttpError(a.status, b, a.requestId, a.retryAfter);
}
