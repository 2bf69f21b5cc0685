"""Check a ``--scheduler`` address before Dask connects to it.

distributed's ``connect`` waits for the peer's handshake without a timeout, and sizes its read buffer from
the first eight bytes it receives: a server that accepts and stays silent hangs the run for ever, and one
that answers with something else (an HTTP server, an SSH banner) gives a traceback or a huge allocation.
``check_scheduler`` connects itself, with a bounded time for every step, and reads the peer's first
message within a small size limit: it must be a Dask handshake. Only then does the Dask client connect.
"""

from __future__ import annotations

import socket
import ssl
import struct
from typing import Any

from .errors import CusweepError, SpecError, excerpt

#: protocols cusweep connects to (ucx needs its own stack; inproc:// lives inside one process)
PROTOCOLS = ("tcp", "tls")
#: seconds allowed for each step of the check (connect, TLS handshake, first message)
TIMEOUT = 10.0
#: largest first message read (a Dask handshake has about 100 bytes)
MAX_HANDSHAKE = 64 * 1024
USAGE = "write it as tcp://HOST:PORT or tls://HOST:PORT, e.g. tcp://127.0.0.1:8786"


def check_address(address: str) -> tuple[str, str, int]:
    """``(protocol, host, port)`` of a scheduler address; SpecError (one line) for anything but
    ``tcp://HOST:PORT`` or ``tls://HOST:PORT`` with a port in 1..65535."""
    text = str(address)
    protocol, sep, location = text.partition("://")
    if not sep:
        raise SpecError(f"--scheduler: {excerpt(text)} is not a scheduler address; {USAGE}")
    if protocol == "inproc":
        raise SpecError(
            f"--scheduler: {excerpt(text)}: an inproc:// scheduler lives inside one process and cusweep "
            f"cannot reach it; {USAGE}, or drop --scheduler for a local cluster"
        )
    if protocol == "ucx":
        raise SpecError(
            f"--scheduler: {excerpt(text)}: cusweep connects over tcp:// or tls://, not ucx:// (UCX needs "
            "its own network stack); give the scheduler's tcp:// or tls:// address"
        )
    if protocol not in PROTOCOLS:
        raise SpecError(f"--scheduler: {excerpt(text)} is not a scheduler address; {USAGE}")
    from distributed.comm.addressing import parse_host_port

    try:
        host, port = parse_host_port(location)
    except (ValueError, TypeError) as exc:
        raise SpecError(
            f"--scheduler: {excerpt(text)} is not a scheduler address "
            f"({' '.join(str(exc).split())[:100]}); {USAGE}"
        ) from None
    if len(str(host)) > 253:  # the longest DNS name
        raise SpecError(
            f"--scheduler: {excerpt(text)} has a host name of {len(str(host)):,} characters (allowed: at "
            f"most 253); {USAGE}"
        )
    if not host or not 1 <= int(port) <= 65535:
        raise SpecError(f"--scheduler: {excerpt(text)} needs a host and a port in 1..65535; {USAGE}")
    return protocol, str(host), int(port)


def check_scheduler(address: str, timeout: float | None = None, security: Any = None) -> None:
    """Refuse (SpecError) a malformed address; raise CusweepError (one line) when no Dask scheduler answers
    at ``address`` within ``timeout`` seconds per step (default ``TIMEOUT``, or Dask's
    ``distributed.comm.timeouts.connect`` when that is shorter): nothing listening, a silent peer, or a
    peer whose first message is not a Dask handshake. ``security``: the client's
    ``distributed.security.Security`` for a ``tls://`` address."""
    protocol, host, port = check_address(address)
    wait = timeout if timeout is not None else connect_timeout()
    try:
        sock = socket.create_connection((host, port), timeout=wait)
    except TimeoutError:
        raise CusweepError(
            f"--scheduler: {address} did not accept a connection within {wait:g} s; check the address and "
            "that the scheduler is running and reachable from here"
        ) from None
    except OSError as exc:
        raise CusweepError(
            f"--scheduler: cannot reach {address} ({exc.strerror or type(exc).__name__}); check the address "
            "and that the scheduler is running and reachable from here"
        ) from None
    try:
        sock.settimeout(wait)
        if protocol == "tls":
            sock = _wrap_tls(sock, address, host, security, wait)
        first = _first_message(sock, address, wait)
    finally:
        sock.close()
    if not (isinstance(first, dict) and "compression" in first and "python" in first):
        raise _not_dask(address, f"its first message is {excerpt(repr(first), 40)}")


def connect_timeout() -> float:
    """``TIMEOUT``, or Dask's ``distributed.comm.timeouts.connect`` when that is shorter."""
    import dask
    from dask.utils import parse_timedelta

    configured = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect", TIMEOUT), "s")
    return float(min(TIMEOUT, configured or TIMEOUT))


def _wrap_tls(sock: socket.socket, address: str, host: str, security: Any, wait: float) -> socket.socket:
    context = security.get_connection_args("client").get("ssl_context") if security is not None else None
    if context is None:
        raise SpecError(
            f"--scheduler: {address} needs TLS credentials; pass --tls-ca-file, --tls-cert and --tls-key"
        )
    try:
        return context.wrap_socket(sock, server_hostname=host if context.check_hostname else None)
    except TimeoutError:
        raise CusweepError(
            f"--scheduler: {address} accepted the connection but did not complete a TLS handshake within "
            f"{wait:g} s; is it a Dask scheduler with TLS (tls://)?"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise _tls_refused(address, exc) from None


def _tls_refused(address: str, exc: OSError) -> CusweepError:
    return CusweepError(
        f"--scheduler: {address} refused the TLS handshake ({' '.join(str(exc).split())[:160]}); check "
        "that --tls-ca-file is the cluster's CA and that --tls-cert/--tls-key were signed by it"
    )


def _recv(sock: socket.socket, n: int, address: str, wait: float) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except TimeoutError:
            raise CusweepError(
                f"--scheduler: {address} accepted the connection but sent no Dask handshake within "
                f"{wait:g} s; it is not a Dask scheduler (or it is overloaded): check the address and port"
            ) from None
        except ssl.SSLError as exc:  # TLS 1.3: the server checks the client's certificate after the handshake
            raise _tls_refused(address, exc) from None
        except OSError as exc:
            raise _not_dask(address, f"the connection failed: {exc.strerror or type(exc).__name__}") from None
        if not chunk:
            got = f"it closed the connection after {len(buf)} bytes" if buf else "it closed the connection"
            raise _not_dask(address, got)
        buf += chunk
    return bytes(buf)


def _first_message(sock: socket.socket, address: str, wait: float) -> Any:
    """The peer's first message, read as distributed's TCP comm frames it (a little-endian uint64 length,
    then frames with their own count and lengths, then msgpack), every size checked before it is read."""
    head = _recv(sock, 8, address, wait)
    (size,) = struct.unpack("<Q", head)
    if not 16 <= size <= MAX_HANDSHAKE:
        raise _not_dask(address, f"its first bytes are {_show(head)}")
    body = _recv(sock, size, address, wait)
    (n_frames,) = struct.unpack_from("<Q", body)
    if not 1 <= n_frames <= 16 or 8 * (1 + n_frames) > size:
        raise _not_dask(address, f"its first bytes are {_show(head + body[:8])}")
    lengths = struct.unpack_from(f"<{n_frames}Q", body, 8)
    start = 8 * (1 + n_frames)
    if sum(lengths) != size - start:
        raise _not_dask(address, "its first message is not framed as Dask frames it")
    frames = []
    for n in lengths:
        frames.append(body[start : start + n])
        start += n
    from distributed.protocol.core import loads

    try:
        return loads(frames, deserialize=False)
    except Exception as exc:  # any decoding failure: not a Dask message
        raise _not_dask(address, f"its first message does not decode ({type(exc).__name__})") from None


def _not_dask(address: str, why: str) -> CusweepError:
    return CusweepError(
        f"--scheduler: {address} is not a Dask scheduler ({why}); check the address and port (the "
        "scheduler's, not its dashboard's)"
    )


def _show(data: bytes) -> str:
    return excerpt(data.decode("ascii", "backslashreplace"), 40)
