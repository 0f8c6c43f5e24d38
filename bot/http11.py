"""uvicorn's HTTP/1.1 protocol with TCP_NODELAY on every connection, whatever the socket's origin.

`serve --workers N` hands the workers a socket bound by the main process; connections accepted
on it came without TCP_NODELAY, so a response written in two parts (headers, then body) waited
for the client's delayed ACK: about 40 ms a request, 185 instead of 6,000 requests/s (measured
on uvicorn 0.54 with h11). Setting it ourselves makes both modes alike. The protocol is
httptools' (C, from `uvicorn[standard]`) where installed, else h11's (pure Python).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # httptools missing: uvicorn's pure-Python parser
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]


def no_delay(transport: asyncio.BaseTransport) -> None:
    """Turn Nagle's algorithm off on a TCP connection (a closed one is left alone)."""
    sock: Any = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


class NoDelayHttpProtocol(_Base):
    """uvicorn's HTTP/1.1 protocol that sets TCP_NODELAY before serving a connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        no_delay(transport)
        super().connection_made(transport)
