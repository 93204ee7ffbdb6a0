"""Per-request bookkeeping in one pure ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware): a
request id, the HTTP metrics, a structured access log, and the last-resort 500 for a fault of the service.

Every request is counted and timed in the metrics. The access log has a line for every request at debug level;
at info it keeps the ones worth reading (failures and slow requests), because formatting and writing a line
per request would cost the prediction hot path about as much as scoring does.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import metrics
from .logging_config import REQUEST_ID

REQUEST_ID_HEADER = b"x-request-id"
# A caller's id is kept only if it is short and plain, so it cannot forge log lines or bloat them.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
SLOW_REQUEST_SECONDS = 0.5  # the latency objective of the service SLO (99% of requests under 0.5 s)
UNMATCHED_ROUTE = "unmatched"

INTERNAL_ERROR_BODY = json.dumps({"detail": "internal server error"}).encode()

access_logger = logging.getLogger(__name__)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        start = time.perf_counter()
        request_id = _request_id(scope)
        token = REQUEST_ID.set(request_id)
        request_id_header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 0  # set when the response starts

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), request_id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            # Logged here, where the request id is still set; the client gets a 500 without internals.
            access_logger.exception("unhandled error", extra={"path": scope["path"]})
            if status:  # the response has started: all that is left is to drop the connection
                raise
            await send_with_request_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(INTERNAL_ERROR_BODY)).encode()),
                    ],
                }
            )
            await send_with_request_id({"type": "http.response.body", "body": INTERNAL_ERROR_BODY})
        finally:
            seconds = time.perf_counter() - start
            route = scope.get("route")
            route_path = getattr(route, "path", UNMATCHED_ROUTE)
            method = scope["method"]
            metrics.observe_request(method, route_path, status, seconds)
            level = logging.INFO if status >= 400 or seconds >= SLOW_REQUEST_SECONDS else logging.DEBUG
            if access_logger.isEnabledFor(level):
                access_logger.log(
                    level,
                    "request",
                    extra={
                        "method": method,
                        "path": scope["path"],
                        "route": route_path,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 3),
                    },
                )
            REQUEST_ID.reset(token)


def _request_id(scope: Scope) -> str:
    headers: list[tuple[bytes, bytes]] = scope["headers"]  # ASGI: (lower-case name, value) byte pairs
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex
