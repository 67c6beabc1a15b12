"""``Retry-After`` on every 503: the service is busy or its store unavailable for now (a read past
its time budget, the database down, no release yet), and a client should wait before asking again
(RFC 9110 §10.2.3). An ASGI middleware, so that it covers every route — pygeoapi's, the tiles', the
health endpoints — without each of them knowing."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: seconds a client should wait after a 503
RETRY_AFTER_SECONDS = 5


class RetryAfter:
    def __init__(self, app: ASGIApp, seconds: int = RETRY_AFTER_SECONDS) -> None:
        self.app = app
        self.value = str(seconds).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_retry_after(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 503:
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"retry-after" for name, _ in headers):
                    headers.append((b"retry-after", self.value))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_retry_after)
