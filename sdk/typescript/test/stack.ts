// The running stack (started by `python -m sdk.stack`, see make sdk-test).
import { execFileSync } from "node:child_process";

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the suites through \`make sdk-test\` (sdk/stack.py)`);
  return value;
}

export const HTTP = env("VIPAY_HTTP");
export const GRPC = `http://${env("VIPAY_GRPC")}`;

function server(...args: string[]): string {
  return execFileSync(env("VIPAY_PYTHON"), ["-m", "server", ...args], { cwd: env("VIPAY_ROOT") }).toString();
}

/** Credentials come from the server's own CLI, the one place that knows how tokens are made. */
export const token = (userId: number, role: "user" | "service" | "admin" = "user") =>
  server("token", "--user-id", String(userId), "--role", role).trim();

/** A signed sandbox payment notification for a VIP order, sent through the gateway. */
export const sandboxPay = (tradeNo: string) => void server("sandbox-pay", tradeNo);

/** The stack's sandbox App Store receipt for an `Iap` order. */
export const sandboxReceipt = (orderId: number) => server("sandbox-receipt", String(orderId)).trim();

export { env };
