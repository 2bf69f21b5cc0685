"""``cusweep explore STORE [--port N] [--no-browser]``: a local web view of a store (127.0.0.1 only)."""

from __future__ import annotations

import argparse

from ..errors import CusweepError, SpecError
from ._common import out

NAME = "explore"
HELP = "local web view of a store (127.0.0.1 only)"


def add_arguments(ex: argparse.ArgumentParser) -> None:
    ex.description = (
        "Serve an interactive view of the store on 127.0.0.1 (BokehJS served locally, no internet needed) "
        "and print its URL; Ctrl-C stops it. See docs/explore.md."
    )
    ex.add_argument("store", metavar="STORE", help="the store's path or URL")
    ex.add_argument("--port", type=int, metavar="N", help="TCP port on 127.0.0.1 (default: a free one)")
    ex.add_argument("--no-browser", action="store_true", help="do not open a browser, only print the URL")


def main(args: argparse.Namespace) -> int:
    """Print the URL, serve until Ctrl-C or SIGTERM (exit 0)."""
    import signal

    from ..explore import serve

    if args.port is not None and not 0 <= args.port <= 65535:
        raise SpecError(f"--port {args.port}: not a TCP port; give 1-65535, or 0 (default) for a free one")
    try:
        server = serve(args.store, args.port or 0)
    except CusweepError:  # StoreError is an OSError too: not a port problem
        raise
    except OSError as exc:
        raise SpecError(f"--port {args.port}: cannot listen on 127.0.0.1:{args.port} ({exc.strerror}); "
                        "choose another port or omit --port") from None
    url = f"http://127.0.0.1:{server.port}/"
    out(f"cusweep explore: serving {args.store} at {url} (127.0.0.1 only); Ctrl-C stops")
    loop = server.io_loop
    aio = loop.asyncio_loop
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
    out("cusweep explore: stopped")
    return 0
