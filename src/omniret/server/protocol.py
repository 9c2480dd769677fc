"""uvicorn's h11 protocol with a header timeout: a client gets ``HEADER_TIMEOUT_S`` seconds to send a
request's headers, from its first byte (or from connecting), or the connection is closed.

uvicorn (0.3x–0.5x) has no such limit: its keep-alive timer only runs between requests and is reset
by every byte, so a client trickling a request line and headers a byte at a time (Slowloris) holds a
connection — and with enough of them, the server — forever. ASGI middleware cannot help: it runs
only once the headers are complete. Bodies are not limited here (large uploads on slow links are
legitimate); their size is bounded by :class:`omniret.server.security.BodyLimitMiddleware`.

Use ``uvicorn.run(app, http=header_timeout_protocol())``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

#: seconds a client has to send a request's headers
HEADER_TIMEOUT_S = 10.0
#: seconds an idle keep-alive connection stays open (uvicorn's ``timeout_keep_alive``). uvicorn's default,
#: 5 s, equals httpx's client-side ``keepalive_expiry``: a client then reuses a pooled connection at the
#: moment the server closes it and gets a ReadError (about 1 request in 5,000 under 50 busy clients).
#: A server that keeps idle connections longer than its clients do leaves the closing to them.
KEEP_ALIVE_S = 20

log = logging.getLogger("omniret.server")


class HeaderTimeoutProtocol(H11Protocol):
    """:class:`H11Protocol` that closes a connection whose request headers are not complete in time."""

    header_timeout: float = HEADER_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that sends nothing at all is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            if self._header_timer is None:  # the first bytes of a request: its headers' clock starts
                self._arm()
        else:
            self._disarm()  # headers complete (the body, if any, is streaming) or the connection is over

    def on_response_complete(self) -> None:
        self._disarm()  # between requests the keep-alive timeout applies
        super().on_response_complete()

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            log.warning("closing the connection of %s: no complete request headers within %.0f s",
                        client, self.header_timeout)
            self.transport.close()


def header_timeout_protocol(seconds: float = HEADER_TIMEOUT_S) -> type[HeaderTimeoutProtocol]:
    """The protocol class with a header timeout of ``seconds`` (for ``uvicorn.run(http=...)``)."""
    if not seconds > 0:
        raise ValueError(f"header timeout must be positive, got {seconds}")
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": float(seconds)})
