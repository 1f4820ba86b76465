"""DiagnosticsService: a no-op RPC (liveness, and the benchmark's baseline)."""

from vipay.diagnostics.v1 import diagnostics_pb2 as pb
from vipay.diagnostics.v1 import diagnostics_pb2_grpc


class DiagnosticsServicer(diagnostics_pb2_grpc.DiagnosticsServiceServicer):
    async def Ping(self, request, context):
        return pb.PingResponse(ok=True)


def register(server, runner, envelopes) -> str:
    diagnostics_pb2_grpc.add_DiagnosticsServiceServicer_to_server(DiagnosticsServicer(), server)
    return pb.DESCRIPTOR.services_by_name["DiagnosticsService"].full_name
