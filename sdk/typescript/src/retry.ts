// Retries with exponential backoff and full jitter, only for calls that are safe to
// repeat (reads, and writes with an idempotency key: 001 request_id, 004 bizCode,
// wallet request_id). What is retried: network errors and timeouts, 429 (waiting at
// least its Retry-After), 502/503/504 / UNAVAILABLE, and 004's 5000.
import { randomUUID } from "node:crypto";

export interface RetryOptions {
  /** Extra attempts after the first (0 turns retries off). Default 2. */
  maxRetries?: number;
  /** First backoff, doubled for each retry. Default 200 ms. */
  baseDelayMs?: number;
  /** Backoff ceiling, and the longest Retry-After honoured. Default 10 s. */
  maxDelayMs?: number;
}

export interface CallOptions {
  /** Per attempt. Default 10 s (DEFAULT_TIMEOUT_MS). */
  timeoutMs?: number;
  retry?: RetryOptions;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_RETRY: Required<RetryOptions> = { maxRetries: 2, baseDelayMs: 200, maxDelayMs: 10_000 };

/** The wait before retry number `attempt` (0-based): half fixed, half random (jitter), at least
 * the server's Retry-After (capped by maxDelayMs). */
export function backoffMs(attempt: number, options: RetryOptions = {}, retryAfterSeconds?: number): number {
  const { baseDelayMs, maxDelayMs } = { ...DEFAULT_RETRY, ...options };
  const exp = Math.min(maxDelayMs, baseDelayMs * 2 ** attempt);
  const jittered = exp / 2 + Math.random() * (exp / 2);
  return retryAfterSeconds === undefined ? jittered : Math.min(maxDelayMs, Math.max(jittered, retryAfterSeconds * 1000));
}

interface Retryable {
  retryable?: boolean;
  retryAfter?: number;
}

/** Runs `attempt` until it succeeds, fails with an error that is not retryable, or the retries
 * run out. `idempotent: false` never retries. */
export async function withRetries<T>(idempotent: boolean, options: RetryOptions | undefined,
                                     attempt: (n: number) => Promise<T>): Promise<T> {
  const max = idempotent ? (options?.maxRetries ?? DEFAULT_RETRY.maxRetries) : 0;
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      const e = err as Retryable;
      if (n >= max || !e?.retryable) throw err;
      await new Promise((resolve) => setTimeout(resolve, backoffMs(n, options, e.retryAfter)));
    }
  }
}

export const newRequestId = () => randomUUID().replace(/-/g, "");
