"""gRPC-only messages carry instants as google.protobuf.Timestamp (the HTTP
families keep their documented "YYYY-MM-DD HH:MM:SS" strings)."""

from __future__ import annotations

from datetime import datetime, timezone

from google.protobuf import timestamp_pb2


def timestamp_message(value: datetime) -> timestamp_pb2.Timestamp:
    """Naive datetimes are UTC (as stored)."""
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
    return message
