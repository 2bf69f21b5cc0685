"""``cusweep explore``: a local web view of a store (Bokeh server on 127.0.0.1), and the self-contained
HTML index of ``cusweep report``.

Modules: ``data`` (the one adapter that reads the store), ``page`` (the Bokeh document), ``server`` (the
embedded server), ``html`` (the report's index.html).
"""

from __future__ import annotations

from typing import Any

__all__ = ["cli_explore", "serve"]


def serve(store: str, port: int = 0) -> Any:
    """Open ``store`` and return a started Bokeh server (127.0.0.1) showing it; run its ``io_loop`` to
    serve, ``stop()`` it to end. Raises SpecError for a path that is not a store."""
    from .data import StoreView
    from .server import make_server

    server = make_server(StoreView(store), port)
    server.start()
    return server


def cli_explore(args: Any) -> int:
    """``cusweep explore STORE [--port N] [--no-browser]``: print the URL, serve until Ctrl-C (exit 0)."""
    import signal

    from ..errors import SpecError

    if args.port is not None and not 0 <= args.port <= 65535:
        raise SpecError(f"--port {args.port}: not a TCP port; give 1-65535, or 0 (default) for a free one")
    try:
        server = serve(args.store, args.port or 0)
    except OSError as exc:
        raise SpecError(f"--port {args.port}: cannot listen on 127.0.0.1:{args.port} ({exc.strerror}); "
                        "choose another port or omit --port") from None
    url = f"http://127.0.0.1:{server.port}/"
    print(f"cusweep explore: serving {args.store} at {url} (127.0.0.1 only); Ctrl-C stops", flush=True)
    loop = server.io_loop
    aio = loop.asyncio_loop  # type: ignore[attr-defined]
    # asyncio's signal handlers wake the loop at once (a plain signal.signal handler would wait for the
    # loop's next timer, up to ~17 s of Bokeh's session cleanup)
    for sig in (signal.SIGINT, signal.SIGTERM):
        aio.add_signal_handler(sig, loop.stop)
    try:
        if not args.no_browser:
            import webbrowser

            loop.add_callback(lambda: webbrowser.open(url))
        loop.start()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            aio.remove_signal_handler(sig)
        server.stop()
    print("cusweep explore: stopped", flush=True)
    return 0
