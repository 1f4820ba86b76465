export * from "./grpc.js";
export * from "./http.js";
export * from "./merchant.js";
export * as membership from "../gen/vipay/membership/v1/membership_pb.js";
export * as recharge from "../gen/vipay/recharge/v1/recharge_pb.js";
export * as wallet from "../gen/vipay/recharge/v1/wallet_pb.js";
export * as merchant from "../gen/vipay/openapi/v1/openapi_charge_pb.js";
export * as diagnostics from "../gen/vipay/diagnostics/v1/diagnostics_pb.js";
