// Typed helpers for the HTTP paths (through Envoy). Answers are parsed strictly
// into the generated message types (fromJson refuses unknown fields), so a shape
// drift shows up as an error, not as undefined at run time.
import { fromJson, type DescMessage, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import * as mp from "../gen/vipay/membership/v1/membership_pb.js";
import * as rp from "../gen/vipay/recharge/v1/recharge_pb.js";

/** A refusal of api-docs/001: the HTTP status and {"message", "errors"}. */
export class HttpError extends Error {
  constructor(readonly status: number, readonly body: { message?: string; errors?: Record<string, string[]> }) {
    super(`HTTP ${status}: ${body?.message ?? ""}`);
  }
}

/** A refusal of 000/002/003, which answer HTTP 200 with their envelope: `code` is the envelope's
 * c / code / status, `data` what the envelope carries (002: {errors} or {captchaUrl}). */
export class EnvelopeError extends Error {
  constructor(readonly code: number, message: string, readonly data: unknown) {
    super(`${code}: ${message}`);
  }
}

type Family = "000" | "002" | "003";

/** The envelope's refusal, if the body is one (checked before parsing into the success type). */
function refusal(family: Family, body: Record<string, unknown>): EnvelopeError | undefined {
  if (family === "000" && body.c !== 0) return new EnvelopeError(Number(body.c), String(body.m), body.d);
  if (family === "002" && body.success !== true) return new EnvelopeError(Number(body.code), String(body.message), body.data);
  if (family === "003" && body.status !== 200) return new EnvelopeError(Number(body.status), String(body.message), body.data);
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
  request_id?: string;
  openid?: string;
}

export class VipayHttp {
  constructor(readonly baseUrl: string, readonly credentials: Credentials = {}) {}

  async request(method: string, path: string, init: { body?: unknown; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { ...init.headers };
    if (this.credentials.token) headers["authorization"] = `Bearer ${this.credentials.token}`;
    if (this.credentials.accessToken) headers["access-token"] = this.credentials.accessToken;
    if (init.body !== undefined) headers["content-type"] = "application/json";
    return fetch(this.baseUrl.replace(/\/$/, "") + path, {
      method, headers, body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
  }

  private async json<T extends DescMessage>(schema: T, res: Response, ok: number[]): Promise<MessageShape<T>> {
    const body = (await res.json()) as JsonValue;
    if (!ok.includes(res.status)) throw new HttpError(res.status, body as never);
    return fromJson(schema, body);
  }

  // --- 001 membership ---
  async getVipConfigs() {
    return this.json(mp.GetVipConfigsResponseSchema, await this.request("GET", "/api/v2/vip/configs"), [200]);
  }
  /** 201 Created: the order and its pay_data. */
  async createVipOrder(order: CreateVipOrder) {
    return this.json(mp.CreateVipOrderResponseSchema, await this.request("POST", "/api/v2/vip/orders", { body: order }), [201]);
  }
  /** The bare JSON array the document shows. */
  async listVipOrders(query: { offset?: number; limit?: number; s?: string; d?: string; timezone?: string } = {}) {
    const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
    const res = await this.request("GET", "/api/v2/vip/orders" + (qs ? `?${qs}` : ""));
    const body = (await res.json()) as JsonValue[];
    if (res.status !== 200) throw new HttpError(res.status, body as never);
    return body.map((o) => fromJson(mp.VipOrderSchema, o));
  }
  async getVipOrder(id: number) {
    return this.json(mp.VipOrderSchema, await this.request("GET", `/api/v2/vip/orders/${id}`), [200]);
  }
  /** 204 No Content. */
  async deleteVipOrder(id: number): Promise<void> {
    const res = await this.request("DELETE", `/api/v2/vip/orders/${id}`);
    if (res.status !== 204) throw new HttpError(res.status, await res.json());
  }
  /** 201 Created, or HttpError 403 when there is nothing to convert. */
  async exchangeVip(level: string) {
    return this.json(mp.ExchangeVipResponseSchema, await this.request("PATCH", "/api/v2/vip/exchange-vip", { body: { level } }), [201]);
  }
  async checkVipOrder(id: number) {
    return this.json(mp.CheckVipOrderResponseSchema, await this.request("GET", `/api/v2/vip/check-order/${id}`), [200]);
  }
  async getMyMembership() {
    return this.json(mp.MembershipStatusSchema, await this.request("GET", "/api/v2/vip/membership"), [200]);
  }
  /** text/html. */
  async getVipProtocol(): Promise<string> {
    const res = await this.request("GET", "/api/v2/vip/protocol");
    if (res.status !== 200) throw new HttpError(res.status, await res.json());
    return res.text();
  }

  // --- 000 / 002 / 003 recharge: refusals arrive as HTTP 200 envelopes and throw EnvelopeError ---
  private async enveloped<T extends DescMessage>(family: Family, schema: T, res: Response): Promise<MessageShape<T>> {
    const body = (await res.json()) as Record<string, unknown>;
    const refused = res.status === 200 ? refusal(family, body) : new EnvelopeError(res.status, String(body?.message), body);
    if (refused) throw refused;
    return fromJson(schema, body as JsonValue);
  }
  async getChargeIndex() {
    return this.enveloped("000", rp.GetChargeIndexResponseSchema, await this.request("GET", "/charge/index"));
  }
  async createChargePayment(id: number, payType: string) {
    const res = await this.request("POST", "/charge/pay", { body: { id, payType } });
    return this.enveloped("000", rp.CreateChargePaymentResponseSchema, res);
  }
  async getRecharge() {
    return this.enveloped("002", rp.GetRechargeResponseSchema, await this.request("GET", "/api/recharge"));
  }
  async createRechargeOrder(order: { id?: number; price: string; payModeId: number; goodsId?: number;
                                     _verifyCode?: string; openid?: string }) {
    return this.enveloped("002", rp.CreateRechargeOrderResponseSchema,
                          await this.request("POST", "/api/recharge/order", { body: order }));
  }
  async getRechargeHistory(query: { page?: number; rows?: number; startDate?: string; endDate?: string;
                                    orderState?: string } = {}) {
    const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
    return this.enveloped("002", rp.GetRechargeHistoryResponseSchema,
                          await this.request("GET", "/api/recharge/history" + (qs ? `?${qs}` : "")));
  }
  /** 003: the route travels in the query (/index.php?s=...). */
  async getRechargeCenter(storeId: number, platform: string, client = platform) {
    const path = `/index.php?s=/api/recharge/center&client=${encodeURIComponent(client)}`;
    const res = await this.request("GET", path, { headers: { storeId: String(storeId), platform } });
    return this.enveloped("003", rp.GetRechargeCenterResponseSchema, res);
  }
}
