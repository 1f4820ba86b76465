// The console's gRPC-Web clients (through the console's own Envoy listener, same origin)
// and the operator session: the credential lives in memory, the session token in
// sessionStorage (this tab only), refreshed before the credential expires.
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { ConsoleService } from "./gen/vipay/console/v1/console_pb";
import { MembershipService } from "./gen/vipay/membership/v1/membership_pb";
import { MerchantAdminService } from "./gen/vipay/openapi/v1/merchant_admin_pb";
import { OperatorService, type Operator } from "./gen/vipay/operators/v1/operators_pb";
import { RefundService } from "./gen/vipay/payments/v1/refunds_pb";
import { WalletService } from "./gen/vipay/recharge/v1/wallet_pb";

const SESSION_KEY = "vipay-console-session";
let credential = "";
let refreshTimer: number | undefined;

const bearer: Interceptor = (next) => async (req) => {
  if (credential) req.header.set("authorization", `Bearer ${credential}`);
  return next(req);
};

const transport = createGrpcWebTransport({ baseUrl: window.location.origin, interceptors: [bearer] });
export const operators = createClient(OperatorService, transport);
export const membership = createClient(MembershipService, transport);
export const refunds = createClient(RefundService, transport);
export const wallet = createClient(WalletService, transport);
export const consoleReads = createClient(ConsoleService, transport);
export const merchants = createClient(MerchantAdminService, transport);

function schedule(expiresAtMs: number) {
  window.clearTimeout(refreshTimer);
  const wait = Math.max(5_000, expiresAtMs - Date.now() - 60_000);
  refreshTimer = window.setTimeout(() => void refresh(), wait);
}

export async function login(name: string, password: string, totpCode: string): Promise<Operator> {
  const answer = await operators.login({ name, password, totpCode });
  credential = answer.credential;
  sessionStorage.setItem(SESSION_KEY, answer.sessionToken);
  schedule(Number(answer.credentialExpireTime?.seconds ?? 0n) * 1000);
  return answer.operator!;
}

/** A new credential for the stored session; null when there is none (log in again). */
export async function refresh(): Promise<Operator | null> {
  const token = sessionStorage.getItem(SESSION_KEY);
  if (!token) return null;
  try {
    const answer = await operators.refreshSession({ sessionToken: token });
    credential = answer.credential;
    schedule(Number(answer.credentialExpireTime?.seconds ?? 0n) * 1000);
    return (await operators.getCurrentOperator({})).operator ?? null;
  } catch (err) {
    if (ConnectError.from(err).code === Code.Unauthenticated) sessionStorage.removeItem(SESSION_KEY);
    return null;
  }
}

export async function logout(): Promise<void> {
  const token = sessionStorage.getItem(SESSION_KEY);
  window.clearTimeout(refreshTimer);
  credential = "";
  sessionStorage.removeItem(SESSION_KEY);
  if (token) await operators.logout({ sessionToken: token });
}

/** The server's words for a refusal: reason and message (google.rpc.ErrorInfo travels too). */
export function describe(err: unknown): string {
  const e = ConnectError.from(err);
  return `${Code[e.code]}: ${e.rawMessage}`;
}

/** AIP-158 page token of an offset, as the server builds it (platform/paging.py). */
export function pageToken(offset: number): string {
  return offset <= 0 ? "" : btoa(`o:${offset}`).replace(/\+/g, "-").replace(/\//g, "_");
}

export function when(ts?: { seconds: bigint }): string {
  return ts ? new Date(Number(ts.seconds) * 1000).toISOString().replace("T", " ").slice(0, 19) + "Z" : "";
}
