"""OperatorService (gRPC only): proto <-> Operators, nothing else."""

from __future__ import annotations

from vipay.operators.v1 import operators_pb2 as pb
from vipay.operators.v1 import operators_pb2_grpc

from server.operators.roles import Permission, require_permission
from server.operators.service import Operators
from server.platform.calls import BlockingRunner, current_call
from server.platform.error_mapping import EnvelopeRegistry
from server.platform.errors import Violations, not_found
from server.platform.paging import offset_from_token, page_token
from server.platform.timestamps import timestamp_message


def operator_message(row) -> pb.Operator:
    return pb.Operator(id=row.id, name=row.name, role=row.role, totp_enabled=row.totp_secret is not None)


def audit_message(row) -> pb.AuditEntry:
    return pb.AuditEntry(id=row.id, operator_id=row.operator_id, operator_name=row.operator_name,
                         operator_role=row.operator_role, create_time=timestamp_message(row.created_at),
                         action=row.action, target=row.target, before_json=row.before_json,
                         after_json=row.after_json, reason=row.reason)


def page_bounds(page_size: int, token: str) -> tuple[int, int]:
    """(offset, limit) of an AIP-158 request: default 20, at most 100."""
    if page_size < 0:
        v = Violations()
        v.add("page_size", "The page_size must not be negative.")
        v.raise_if_any()
    return (offset_from_token(token) if token else 0), min(page_size or 20, 100)


class OperatorServicer(operators_pb2_grpc.OperatorServiceServicer):
    def __init__(self, operators: Operators, run: BlockingRunner):
        self._svc = operators
        self._run = run

    async def Login(self, request, context):
        login = await self._run(self._svc.login, request.name, request.password, request.totp_code)
        return pb.LoginResponse(operator=operator_message(login.operator), credential=login.credential,
                                credential_expire_time=timestamp_message(login.expires_at),
                                session_token=login.session_token)

    async def RefreshSession(self, request, context):
        credential, expires = await self._run(self._svc.refresh, request.session_token)
        return pb.RefreshSessionResponse(credential=credential, credential_expire_time=timestamp_message(expires))

    async def Logout(self, request, context):
        await self._run(self._svc.logout, request.session_token)
        return pb.LogoutResponse()

    async def GetCurrentOperator(self, request, context):
        principal = require_permission(current_call.get().principal, Permission.READ)
        row = await self._run(self._svc.get, principal.user_id)
        if row is None or row.role != principal.role:
            raise not_found("operator", principal.user_id)
        return pb.GetCurrentOperatorResponse(operator=operator_message(row))

    async def ListAuditEntries(self, request, context):
        require_permission(current_call.get().principal, Permission.READ)
        offset, limit = page_bounds(request.page_size, request.page_token)
        page = await self._run(self._svc.audit_log, offset, limit, action=request.action, target=request.target,
                               operator_name=request.operator_name)
        return pb.ListAuditEntriesResponse(entries=[audit_message(r) for r in page.entries],
                                           next_page_token=page_token(offset + limit) if page.more else "",
                                           total_size=page.total)


def register(server, runner: BlockingRunner, envelopes: EnvelopeRegistry, *, operators: Operators) -> str:
    operators_pb2_grpc.add_OperatorServiceServicer_to_server(OperatorServicer(operators, runner), server)
    return pb.DESCRIPTOR.services_by_name["OperatorService"].full_name
