// One HTTP attempt: a timeout, the request id sent and read back, no answer -> NetworkError.
import { NetworkError, parseRetryAfter } from "./errors.js";
import { DEFAULT_TIMEOUT_MS, newRequestId } from "./retry.js";

export interface Answer {
  status: number;
  text: string;
  /** The gateway's x-request-id, else the one sent. */
  requestId: string;
  retryAfter?: number;
  headers: Headers;
}

export async function send(url: string, init: { method: string; headers: Record<string, string>; body?: string | Buffer },
                           timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Answer> {
  const sent = init.headers["x-request-id"] ?? newRequestId();
  try {
    const res = await fetch(url, { method: init.method, headers: { ...init.headers, "x-request-id": sent },
                                   body: typeof init.body === "string" || init.body === undefined ? init.body : new Uint8Array(init.body),
                                   signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    return { status: res.status, text, requestId: res.headers.get("x-request-id") ?? sent,
             retryAfter: parseRetryAfter(res.headers.get("retry-after")), headers: res.headers };
  } catch (err) {
    const what = (err as Error)?.name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : String((err as Error)?.message ?? err);
    throw new NetworkError(`${init.method} ${url}: ${what}`, sent, err);
  }
}

/** The body as JSON, or undefined when it is not JSON (e.g. a proxy's plain-text 503). */
export function jsonOf(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
