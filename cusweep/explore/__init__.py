"""``cusweep explore``: a local web view of a store (Bokeh server on 127.0.0.1), and the self-contained
HTML index of ``cusweep report``.

Modules: ``data`` (the one adapter that reads the store), ``page`` (the Bokeh document), ``server`` (the
embedded server), and ``cusweep.report_html`` writes the report's index.html.
"""

from __future__ import annotations

from typing import Any

__all__ = ["serve"]


def serve(store: str, port: int = 0) -> Any:
    """Open ``store`` and return a started Bokeh server (127.0.0.1) showing it; run its ``io_loop`` to
    serve, ``stop()`` it to end. Raises SpecError for a path that is not a store."""
    from .data import StoreView
    from .server import make_server

    server = make_server(StoreView(store), port)
    server.start()
    return server
