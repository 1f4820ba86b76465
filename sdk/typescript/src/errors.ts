// Typed errors of every API family. The codes are generated from ONE declaration,
// protos/vipay/legacy/v1/errors.proto (the enums below; their comments document each
// code), which the server reads too. Every error carries the request id (the
// gateway's x-request-id, or the one this SDK sent when no answer arrived) and, when
// the server said when to come back, retryAfter (seconds).
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema, BadRequestSchema, type BadRequest } from "../gen/google/rpc/error_details_pb.js";
import { ErrorReason, MembershipHttpStatus, OpenApiStatus, RechargeCode, YoshopStatus }
  from "../gen/vipay/legacy/v1/errors_pb.js";

export { ErrorReason, MembershipHttpStatus, OpenApiStatus, RechargeCode, YoshopStatus };

/** Base of the HTTP families' errors (001, 000/002/003, 004) and of network failures. */
export class VipayError extends Error {
  constructor(message: string, readonly requestId: string, readonly retryAfter?: number) {
    super(message);
    this.name = new.target.name;
  }
  /** True when the same request may safely be sent again (the SDK does so for idempotent calls). */
  get retryable(): boolean {
    return false;
  }
}

/** No answer: connection refused or reset, DNS failure, or the timeout passed. */
export class NetworkError extends VipayError {
  constructor(message: string, requestId: string, readonly cause?: unknown) {
    super(message, requestId);
  }
  override get retryable() {
    return true;
  }
}

/** A refusal of api-docs/001: the HTTP status and {"message", "errors"}. */
export class HttpError extends VipayError {
  constructor(readonly status: MembershipHttpStatus | number,
              readonly body: { message?: string; errors?: Record<string, string[]> },
              requestId = "", retryAfter?: number) {
    super(`HTTP ${status}: ${body?.message ?? ""}`, requestId, retryAfter);
  }
  /** The declared name of the status (e.g. "UNPROCESSABLE"), or undefined for an undeclared one. */
  get statusName(): string | undefined {
    return MembershipHttpStatus[this.status];
  }
  override get retryable() {
    return this.status === 429 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

export type Family = "000" | "002" | "003";

/** A refusal of 000/002/003, which answer HTTP 200 with their envelope: `code` is the envelope's
 * c / code (RechargeCode) or status (003, YoshopStatus); `data` what the envelope carries
 * (002: {errors} or {captchaUrl}). */
export class EnvelopeError extends VipayError {
  constructor(readonly code: RechargeCode | YoshopStatus | number, message: string, readonly data: unknown,
              requestId = "", readonly family: Family | "http" = "002", retryAfter?: number) {
    super(`${code}: ${message}`, requestId, retryAfter);
  }
  get codeName(): string | undefined {
    return this.family === "003" ? YoshopStatus[this.code] : RechargeCode[this.code];
  }
  override get retryable() {
    return this.family !== "003" && [429, 502, 503, 504].includes(this.code);
  }
}

/** A refusal of api-docs/004 (HTTP 200 with {"status","message","data"}; 5000 with HTTP 500).
 * 4012 (ORDER_FAILED) carries the failed, refunded order in `data`. */
export class MerchantError extends VipayError {
  constructor(readonly status: OpenApiStatus | number, readonly serverMessage: string, readonly data: unknown,
              requestId = "", retryAfter?: number) {
    super(`${status} ${OpenApiStatus[status] ?? ""}: ${serverMessage}`, requestId, retryAfter);
  }
  get statusName(): string | undefined {
    return OpenApiStatus[this.status];
  }
  override get retryable() {
    return this.status === OpenApiStatus.INTERNAL;
  }
}

/** A gRPC refusal: the status code plus the server's google.rpc.ErrorInfo reason (ErrorReason). */
export class GrpcError extends ConnectError {
  readonly reason: ErrorReason;
  /** The reason as sent (also when this SDK is older than the server and does not know it). */
  readonly reasonName: string;
  readonly errorMetadata: Record<string, string>;
  readonly requestId: string;
  readonly retryAfter?: number;
  readonly badRequest?: BadRequest;

  constructor(err: ConnectError, sentRequestId: string) {
    super(err.rawMessage, err.code, err.metadata, err.details as never, err.cause);
    // The name stays "ConnectError": Connect recognises its errors by it (and passes them on as they are).
    const info = err.findDetails(ErrorInfoSchema)[0];
    this.reasonName = info?.reason ?? "";
    const declared = (ErrorReason as unknown as Record<string, number>)[this.reasonName];
    this.reason = declared ?? ErrorReason.UNSPECIFIED;
    this.errorMetadata = { ...(info?.metadata ?? {}) };
    this.badRequest = err.findDetails(BadRequestSchema)[0];
    this.requestId = err.metadata.get("x-request-id") ?? sentRequestId;
    const after = Number(this.errorMetadata["retry_after_seconds"] ?? NaN);
    this.retryAfter = Number.isFinite(after) ? after : undefined;
  }
  // ConnectError's instanceof accepts any error named ConnectError; this one only its own.
  static override [Symbol.hasInstance](v: unknown): boolean {
    return typeof v === "object" && v !== null && Object.prototype.isPrototypeOf.call(GrpcError.prototype, v);
  }
  get retryable(): boolean {
    return this.code === Code.Unavailable || (this.code === Code.ResourceExhausted && this.reason === ErrorReason.RATE_LIMITED);
  }
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date), if any. */
export function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - Date.now()) / 1000);
}
