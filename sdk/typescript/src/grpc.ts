// gRPC clients for the internal services (Connect over HTTP/2, h2c or TLS): a request id on
// every call, a default timeout, typed errors (GrpcError with the ErrorInfo reason) and
// retries of what is safe to repeat (reads, and writes carrying a request_id).
import { createClient, ConnectError, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { type DescService } from "@bufbuild/protobuf";
import { BadRequestSchema, ErrorInfoSchema, type BadRequest, type ErrorInfo } from "../gen/google/rpc/error_details_pb.js";
import { MembershipService } from "../gen/vipay/membership/v1/membership_pb.js";
import { WalletService, type WalletEntry } from "../gen/vipay/recharge/v1/wallet_pb.js";
import { DiagnosticsService } from "../gen/vipay/diagnostics/v1/diagnostics_pb.js";
import { GrpcError } from "./errors.js";
import { DEFAULT_TIMEOUT_MS, newRequestId, withRetries, type CallOptions } from "./retry.js";

/** Reads, and writes made idempotent by a request_id, may be sent again. */
function idempotent(method: string, message: unknown): boolean {
  return /^(Get|List|Check|Query)/.test(method) || !!(message as { requestId?: string })?.requestId;
}

/** A transport to the gRPC server; `token` (a JWT) is sent as `authorization: Bearer ...`. */
export function grpcTransport(baseUrl: string, token?: string, options: CallOptions = {}): Transport {
  const interceptor: Interceptor = (next) => async (req) => {
    if (token) req.header.set("authorization", `Bearer ${token}`);
    if (!req.header.has("x-request-id")) req.header.set("x-request-id", newRequestId());
    const sent = req.header.get("x-request-id")!;
    const safe = !req.stream && idempotent(req.method.name, req.message);
    return withRetries(safe, options.retry, async () => {
      try {
        return await next(req);
      } catch (err) {
        throw new GrpcError(ConnectError.from(err), sent);
      }
    });
  };
  return createGrpcTransport({ baseUrl, interceptors: [interceptor], defaultTimeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS });
}

export function client<T extends DescService>(service: T, transport: Transport): Client<T> {
  return createClient(service, transport);
}

export const membershipClient = (t: Transport) => createClient(MembershipService, t);
export const walletClient = (t: Transport) => createClient(WalletService, t);
export const diagnosticsClient = (t: Transport) => createClient(DiagnosticsService, t);

/** Every entry of a wallet, newest first, page after page (page_token). */
export async function* walletEntries(wallet: Client<typeof WalletService>,
                                     query: { userId: bigint; storeId?: bigint; pageSize?: number }): AsyncGenerator<WalletEntry> {
  let pageToken = "";
  do {
    const page = await wallet.getWallet({ ...query, pageToken });
    yield* page.entries;
    pageToken = page.nextPageToken;
  } while (pageToken);
}

/** The server's rich error details (google.rpc.ErrorInfo: reason + metadata). */
export function errorInfo(err: unknown): ErrorInfo | undefined {
  return ConnectError.from(err).findDetails(ErrorInfoSchema)[0];
}

/** Field violations of an INVALID_ARGUMENT (google.rpc.BadRequest). */
export function badRequest(err: unknown): BadRequest | undefined {
  return ConnectError.from(err).findDetails(BadRequestSchema)[0];
}
