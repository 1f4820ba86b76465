// gRPC clients for the internal services (Connect over HTTP/2, h2c or TLS).
import { createClient, ConnectError, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { type DescService } from "@bufbuild/protobuf";
import { BadRequestSchema, ErrorInfoSchema, type BadRequest, type ErrorInfo } from "../gen/google/rpc/error_details_pb.js";
import { MembershipService } from "../gen/vipay/membership/v1/membership_pb.js";
import { WalletService } from "../gen/vipay/recharge/v1/wallet_pb.js";
import { DiagnosticsService } from "../gen/vipay/diagnostics/v1/diagnostics_pb.js";

/** A transport to the gRPC server; `token` (a JWT) is sent as `authorization: Bearer ...`. */
export function grpcTransport(baseUrl: string, token?: string): Transport {
  const auth: Interceptor = (next) => async (req) => {
    if (token) req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  return createGrpcTransport({ baseUrl, interceptors: [auth] });
}

export function client<T extends DescService>(service: T, transport: Transport): Client<T> {
  return createClient(service, transport);
}

export const membershipClient = (t: Transport) => createClient(MembershipService, t);
export const walletClient = (t: Transport) => createClient(WalletService, t);
export const diagnosticsClient = (t: Transport) => createClient(DiagnosticsService, t);

/** The server's rich error details (google.rpc.ErrorInfo: reason + metadata). */
export function errorInfo(err: unknown): ErrorInfo | undefined {
  return ConnectError.from(err).findDetails(ErrorInfoSchema)[0];
}

/** Field violations of an INVALID_ARGUMENT (google.rpc.BadRequest). */
export function badRequest(err: unknown): BadRequest | undefined {
  return ConnectError.from(err).findDetails(BadRequestSchema)[0];
}
