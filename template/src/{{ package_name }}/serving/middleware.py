"""Per-request bookkeeping in one pure ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware): a
request id, the HTTP metrics and one structured access-log line per request.
"""

from __future__ import annotations

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
# Probes and scrapes are logged at debug level: at info they would drown the requests that matter.
QUIET_ROUTES = frozenset({"/health", "/ready", "/ping", "/metrics"})
UNMATCHED_ROUTE = "unmatched"

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
        status = 500  # what the client gets if the app fails before it starts a response

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), request_id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            seconds = time.perf_counter() - start
            route = scope.get("route")
            route_path = getattr(route, "path", UNMATCHED_ROUTE)
            method = scope["method"]
            metrics.observe_request(method, route_path, status, seconds)
            level = logging.DEBUG if route_path in QUIET_ROUTES and status < 400 else logging.INFO
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
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex
