// Test servers that speak HTTP in front of the real gateway: one that fails the first
// attempts (then forwards), one that answers canned bodies (forward compatibility).
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface Seen {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  at: number;
}

export interface TestServer {
  url: string;
  seen: Seen[];
  close: () => Promise<void>;
}

type Answer = { status: number; headers?: Record<string, string>; body: string };

async function serve(handle: (req: Seen, n: number) => Promise<Answer>): Promise<TestServer> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const s = { method: req.method!, path: req.url!, headers: req.headers, body: Buffer.concat(chunks), at: Date.now() };
      seen.push(s);
      const a = await handle(s, seen.length);
      res.writeHead(a.status, a.headers ?? {}).end(a.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen,
           close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }) };
}

/** Answers `failure` to the first `failures` requests, then forwards to `target`. */
export function flakyProxy(target: string, failures: number,
                           failure: Answer = { status: 503, headers: { "content-type": "text/plain" }, body: "upstream unavailable" }) {
  return serve(async (req, n) => {
    if (n <= failures) return failure;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string" && k !== "host" && k !== "content-length") headers[k] = v;
    const res = await fetch(target + req.path, { method: req.method, headers,
                                                 body: req.body.length ? new Uint8Array(req.body) : undefined });
    return { status: res.status, headers: { "content-type": res.headers.get("content-type") ?? "application/json",
                                            "x-request-id": res.headers.get("x-request-id") ?? "" }, body: await res.text() };
  });
}

/** Always answers `answer`. */
export const fixedServer = (answer: Answer) => serve(async () => answer);
