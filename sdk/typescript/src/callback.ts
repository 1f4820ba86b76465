// Status callbacks (docs/openapi.md "Status callbacks"): the platform POSTs a signed report
// for each final state of an order. CallbackHandler verifies the platform's signature over a
// text that includes YOUR merchantId, the timestamp window and the nonce (refusing replays
// through a pluggable store), and hands over the typed report.
import { createPublicKey, verify, type KeyObject } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { StatusCallbackSchema, type StatusCallback } from "../gen/vipay/openapi/v1/openapi_charge_pb.js";
import { parse } from "./http.js";

export type { StatusCallback };

/** CALLBACK, merchantId, businessId, timestamp, nonce, body: the merchantId line binds a report to its merchant. */
export function callbackSigningString(merchantId: string, businessId: string, timestamp: string, nonce: string,
                                      body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(["CALLBACK", merchantId, businessId, timestamp, nonce].join("\n") + "\n"), body,
                        Buffer.from("\n")]);
}

/** Remembers nonces: `claim` is true the first time a key is seen within `ttlMs`, false after.
 * Share one store between your processes (e.g. Redis SET NX PX) to refuse replays across them. */
export interface NonceStore {
  claim(key: string, ttlMs: number): boolean | Promise<boolean>;
}

/** The default store: one process's memory; expired nonces are dropped as new ones arrive. */
export class MemoryNonceStore implements NonceStore {
  private readonly seen = new Map<string, number>();
  claim(key: string, ttlMs: number): boolean {
    const now = Date.now();
    for (const [k, until] of this.seen) {
      if (until > now) break; // insertion order = expiry order (one ttl per store user)
      this.seen.delete(k);
    }
    if ((this.seen.get(key) ?? 0) > now) return false;
    this.seen.set(key, now + ttlMs);
    return true;
  }
}

export type CallbackRefusal = "missing_header" | "stale" | "bad_signature" | "wrong_merchant" | "replayed" | "bad_body";

export class CallbackError extends Error {
  constructor(readonly reason: CallbackRefusal, message: string) {
    super(message);
    this.name = "CallbackError";
  }
}

export interface CallbackHandlerOptions {
  /** Our platform public key (PEM; `python -m server merchant platform-key`). */
  platformPublicKeyPem: string;
  /** YOUR merchantId: never take it from the request. */
  merchantId: string;
  nonceStore?: NonceStore;
  /** Accepted clock difference, default 5 minutes. */
  maxSkewMs?: number;
}

type Headers = Record<string, string | string[] | undefined>;

export class CallbackHandler {
  private readonly key: KeyObject;
  private readonly store: NonceStore;
  private readonly maxSkewMs: number;

  constructor(readonly options: CallbackHandlerOptions) {
    this.key = createPublicKey(options.platformPublicKeyPem);
    this.store = options.nonceStore ?? new MemoryNonceStore();
    this.maxSkewMs = options.maxSkewMs ?? 5 * 60 * 1000;
  }

  /** The verified report, or CallbackError. Header names in any case. */
  async verify(headers: Headers, body: Buffer): Promise<StatusCallback> {
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) if (typeof v === "string") h[k.toLowerCase()] = v;
    const { timestamp, nonce, businessid, sign: signature } = h;
    if (!timestamp || !nonce || !businessid || !signature) throw new CallbackError("missing_header", "a signing header is missing");
    if (!/^[0-9]{1,16}$/.test(timestamp) || Math.abs(Date.now() - Number(timestamp)) > this.maxSkewMs) {
      throw new CallbackError("stale", "timestamp outside the accepted window");
    }
    const text = callbackSigningString(this.options.merchantId, businessid, timestamp, nonce, body);
    if (!verify("sha256", text, this.key, Buffer.from(signature, "base64"))) {
      throw new CallbackError("bad_signature", "the platform's signature does not verify for this merchant");
    }
    let report: StatusCallback;
    try {
      report = parse(StatusCallbackSchema, JSON.parse(body.toString("utf8")));
    } catch (err) {
      throw new CallbackError("bad_body", `the report is not the documented JSON: ${(err as Error).message}`);
    }
    if (report.merchantId !== this.options.merchantId) throw new CallbackError("wrong_merchant", "a report for another merchant");
    // Claimed only once the signature verified: nobody without the platform key can spend nonces.
    if (!(await this.store.claim(`${businessid}\n${nonce}`, 2 * this.maxSkewMs))) {
      throw new CallbackError("replayed", "this nonce was already accepted");
    }
    return report;
  }

  /** A node:http listener: verifies, awaits `onReport` (process idempotently by orderCode: a
   * report may come more than once), answers SUCCESS; 400 for a refused report, 500 when
   * onReport throws (the platform then sends it again later). */
  listener(onReport: (report: StatusCallback) => unknown | Promise<unknown>, maxBytes = 64 * 1024) {
    return (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on("data", (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) req.destroy();
        else chunks.push(c);
      });
      req.on("end", async () => {
        try {
          const report = await this.verify(req.headers, Buffer.concat(chunks));
          await onReport(report);
          res.writeHead(200, { "content-type": "text/plain" }).end("SUCCESS");
        } catch (err) {
          res.writeHead(err instanceof CallbackError ? 400 : 500, { "content-type": "text/plain" })
            .end(err instanceof CallbackError ? err.reason : "error");
        }
      });
    };
  }
}

/** True when a status callback really comes from the platform, is fresh and is for YOUR
 * merchantId. Stateless: it does not refuse replays (CallbackHandler does). */
export function verifyCallback(platformPublicKeyPem: string, headers: Headers, body: Buffer, merchantId: string,
                               maxSkewMs = 5 * 60 * 1000): boolean {
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
