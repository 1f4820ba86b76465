import { test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { badRequest, errorInfo, grpcTransport, membershipClient, walletClient } from "../src/index.js";
import { GRPC, sandboxPay, token } from "./stack.js";

test("membership status over gRPC: int64 id, Timestamp expiry", async () => {
  const user = membershipClient(grpcTransport(GRPC, token(101)));
  const order = await user.createVipOrder({ timezone: "Asia/Shanghai", duration: 3, level: "middle", payMethod: "Alipay_AopApp" });
  sandboxPay(order.tradeNo);
  const service = membershipClient(grpcTransport(GRPC, token(0, "service")));
  const status = await service.getMembershipStatus({ userId: 101n });
  assert.equal(status.userId, 101n);
  assert.ok(status.isVip);
  assert.equal(status.currentLevel, "middle");
  const days = (timestampDate(status.levels[0].expireTime!).getTime() - Date.now()) / 86400e3;
  assert.ok(days > 85 && days < 93, `expiry in ${days} days`);
});

test("membership status needs the service role: PERMISSION_DENIED with ErrorInfo", async () => {
  const user = membershipClient(grpcTransport(GRPC, token(102)));
  await assert.rejects(user.getMembershipStatus({ userId: 102n }), (err) => {
    assert.equal(ConnectError.from(err).code, Code.PermissionDenied);
    assert.ok(errorInfo(err)?.reason, "an ErrorInfo reason");
    return true;
  });
});

test("wallet: credit and debit are idempotent by request_id; overdraft refused with its reason", async () => {
  const wallet = walletClient(grpcTransport(GRPC, token(0, "service")));
  const userId = 103n;
  const credit = { userId, amountFen: 500n, reference: "refund:ts-1", requestId: "ts-credit-1" };
  const first = await wallet.creditWallet(credit);
  const again = await wallet.creditWallet(credit);
  assert.equal(first.balanceFen, 500n);
  assert.equal(again.entry?.id, first.entry?.id);
  assert.equal(again.balanceFen, 500n);
  const debit = await wallet.debitWallet({ userId, amountFen: 200n, reference: "order:ts-1", requestId: "ts-debit-1" });
  assert.equal(debit.balanceFen, 300n);
  assert.equal(debit.entry?.amountFen, -200n);
  assert.ok(debit.entry?.createTime, "create_time is a Timestamp");
  await assert.rejects(wallet.debitWallet({ userId, amountFen: 301n, reference: "order:ts-2", requestId: "ts-debit-2" }),
    (err) => {
      assert.equal(ConnectError.from(err).code, Code.FailedPrecondition);
      assert.equal(errorInfo(err)?.reason, "INSUFFICIENT_BALANCE");
      return true;
    });
  const page = await wallet.getWallet({ userId, pageSize: 10 });
  assert.equal(page.balanceFen, 300n);
  assert.deepEqual(page.entries.map((e) => e.reason), ["debit", "credit"]);
});

test("invalid arguments carry BadRequest field violations", async () => {
  const wallet = walletClient(grpcTransport(GRPC, token(0, "service")));
  await assert.rejects(wallet.debitWallet({ userId: 104n, amountFen: 0n }), (err) => {
    assert.equal(ConnectError.from(err).code, Code.InvalidArgument);
    const fields = badRequest(err)?.fieldViolations.map((v) => v.field) ?? [];
    assert.ok(fields.includes("amount_fen") || fields.includes("amountFen"), `violations: ${fields}`);
    return true;
  });
});
