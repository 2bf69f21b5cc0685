"""The explorer's web server: an embedded Bokeh server on 127.0.0.1 only, serving BokehJS and its CSS itself
(no CDN), with websocket connections accepted only from the page it serves."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from .data import StoreView

if TYPE_CHECKING:
    from types import TracebackType

    from bokeh.server.server import Server

#: the only interface the explorer listens on
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def make_server(view: StoreView, port: int = 0) -> Server:
    """A Bokeh server (not started) for the explorer of ``view`` on 127.0.0.1:``port`` (0: a free port)."""
    from bokeh.application import Application
    from bokeh.application.handlers.function import FunctionHandler
    from bokeh.server.server import Server
    from bokeh.settings import settings

    from .page import Explorer

    settings.resources.set_value("server")  # BokehJS from this server, never a CDN (works offline)

    def modify(doc: Any) -> None:
        Explorer(view, doc)

    app = Application(FunctionHandler(modify))
    tries = 1 if port else 5
    for attempt in range(tries):
        p = port or free_port()
        try:
            return Server({"/": app}, address=HOST, port=p, num_procs=1,
                          allow_websocket_origin=[f"{HOST}:{p}", f"localhost:{p}"])
        except OSError as exc:
            _close_sockets(exc.__traceback__)
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _close_sockets(tb: TracebackType | None) -> None:
    """Close the sockets left open in the frames of a failed bind: tornado's ``bind_sockets`` raises the
    bind error without closing the socket it made (a ResourceWarning, an open descriptor until the garbage
    collector finds it)."""
    while tb is not None:
        for value in list(tb.tb_frame.f_locals.values()):
            if isinstance(value, socket.socket):
                value.close()
        tb = tb.tb_next
