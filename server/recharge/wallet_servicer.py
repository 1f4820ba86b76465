"""WalletService (internal, gRPC only; role `service`, and operators: reads for every
role, moves for finance and admin): proto <-> service layer."""

from __future__ import annotations

from vipay.recharge.v1 import wallet_pb2 as wpb
from vipay.recharge.v1 import wallet_pb2_grpc

from server.operators.roles import SERVICE, Permission, require_permission
from server.platform.calls import BlockingRunner, current_call
from server.platform.error_mapping import EnvelopeRegistry
from server.platform.errors import Violations
from server.platform.paging import keyset_token, position_from_token
from server.platform.times import naive_now
from server.platform.timestamps import timestamp_message
from server.recharge.wallet import Wallets
from server.recharge.views import WalletEntryView


def entry_message(row: WalletEntryView) -> wpb.WalletEntry:
    return wpb.WalletEntry(id=row.id, amount_fen=row.amount, balance_after_fen=row.balance_after, reason=row.reason,
                           reference=row.reference, request_id=row.request_id or "",
                           create_time=timestamp_message(row.created_at))



class WalletServicer(wallet_pb2_grpc.WalletServiceServicer):
    def __init__(self, service: Wallets, run: BlockingRunner, audited=None):
        self._svc = service
        self._run = run
        self._audited = audited  # (actor, action, target, before, after, reason): the audit log

    async def GetWallet(self, request, context):
        require_permission(current_call.get().principal, Permission.READ, service=True)
        offset, before_id = position_from_token(request.page_token) if request.page_token else (0, None)
        if request.page_size < 0:  # PostgreSQL refuses a negative LIMIT (a 500 before)
            v = Violations()
            v.add("page_size", "The page_size must not be negative.")
            v.raise_if_any()
        limit = min(request.page_size or 20, 100)
        balance, rows, more = await self._run(self._svc.wallet_entries, request.user_id, request.store_id, offset,
                                              limit, before_id)
        return wpb.GetWalletResponse(balance_fen=balance, entries=[entry_message(r) for r in rows],
                                     next_page_token=keyset_token(rows[-1].id) if more else "")

    async def DebitWallet(self, request, context):
        change = await self._move(request, debit=True)
        return wpb.DebitWalletResponse(entry=entry_message(change.entry), balance_fen=change.balance)

    async def CreditWallet(self, request, context):
        change = await self._move(request, debit=False)
        return wpb.CreditWalletResponse(entry=entry_message(change.entry), balance_fen=change.balance)

    async def _move(self, request, *, debit: bool):
        """An operator's move (not an internal service's) is an adjustment: audited, with
        its reference as the reason (docs/console.md). A retry adds no entry."""
        actor = require_permission(current_call.get().principal, Permission.WALLET, service=True)
        started = naive_now()  # an entry older than the call is a retry's
        change = await self._run(self._svc.move, request.user_id, request.store_id, request.amount_fen,
                                 request.reference, request.request_id, debit=debit)
        entry = change.entry
        if self._audited is not None and actor.role != SERVICE and entry.created_at >= started:
            await self._run(self._audited, actor, "wallet.debit" if debit else "wallet.credit",
                            f"user:{request.user_id}", {"balance_fen": entry.balance_after - entry.amount},
                            {"balance_fen": entry.balance_after, "entry_id": entry.id}, request.reference)
        return change


def register(server, runner: BlockingRunner, envelopes: EnvelopeRegistry, *, wallets: Wallets,
             audited=None) -> str:
    """`audited`: the operators' audit log, for operators' adjustments (docs/console.md)."""
    wallet_pb2_grpc.add_WalletServiceServicer_to_server(WalletServicer(wallets, runner, audited), server)
    return wpb.DESCRIPTOR.services_by_name["WalletService"].full_name
