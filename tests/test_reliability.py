"""Issue 19, the command line: hostile --scheduler peers and addresses, --store URLs, very long and
control-character names. Every case is one line on stderr with its exit code, in bounded time, and leaves
nothing behind. Servers are real sockets on 127.0.0.1 that stay silent or answer junk.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cusweep.cli import main
from cusweep.errors import CusweepError, SpecError
from cusweep.scheduler import check_address, check_scheduler

from .conftest import cusweep_exe
from .test_cli_errors import GOOD_SWEEP


class Peer:
    """A TCP server on 127.0.0.1 that accepts connections and then sends ``reply`` (or nothing) and holds
    the connection open until closed."""

    def __init__(self, reply: bytes = b""):
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.accepted = 0
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._conns.append(conn)
            if self.reply:
                try:
                    conn.sendall(self.reply)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for c in self._conns:
            c.close()
        self.sock.close()


@pytest.fixture
def peer_factory():
    peers: list[Peer] = []

    def make(reply: bytes = b"") -> Peer:
        peers.append(Peer(reply))
        return peers[-1]

    yield make
    for p in peers:
        p.close()


JUNK = {
    "http": b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
    "ssh": b"SSH-2.0-OpenSSH_9.6\r\n",
    "huge-length": b"\xff" * 8 + b"x" * 100,  # a Dask-style length prefix of 2**64 - 1 bytes
    "plausible-length-then-garbage": (4000).to_bytes(8, "little") + b"\x07" * 4000,
}


# --------------------------------------------------------------------------------------------------
# check_scheduler, in process


def test_silent_peer_times_out(peer_factory):
    peer = peer_factory()
    t0 = time.perf_counter()
    with pytest.raises(CusweepError, match=r"accepted the connection but sent no Dask handshake within 1 s"):
        check_scheduler(peer.address, timeout=1.0)
    assert time.perf_counter() - t0 < 10
    assert peer.accepted == 1


@pytest.mark.parametrize("kind", sorted(JUNK))
def test_junk_peer_is_not_a_scheduler(peer_factory, kind):
    peer = peer_factory(JUNK[kind])
    t0 = time.perf_counter()
    with pytest.raises(CusweepError, match=r"is not a Dask scheduler \(") as info:
        check_scheduler(peer.address, timeout=2.0)
    assert time.perf_counter() - t0 < 10
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def test_a_closed_port_is_refused_at_once():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(CusweepError, match=rf"cannot reach tcp://127.0.0.1:{port} \(Connection refused\)"):
        check_scheduler(f"tcp://127.0.0.1:{port}", timeout=2.0)


def test_a_real_scheduler_passes(local_client):
    check_scheduler(local_client.scheduler.address, timeout=5.0)


@pytest.mark.parametrize(
    ("address", "want"),
    [
        ("inproc://127.0.0.1/1234/1", "an inproc:// scheduler lives inside one process"),
        ("ucx://127.0.0.1:8786", "cusweep connects over tcp:// or tls://, not ucx://"),
        ("ws://127.0.0.1:8786", "is not a scheduler address"),
        ("tcp://127.0.0.1:0", "a port in 1..65535"),
        ("tcp://" + "h" * 5000 + ":8786", "…' (5,011 characters) has a host name of 5,000 characters"),
    ],
)
def test_addresses_cusweep_cannot_use_are_refused(address, want):
    with pytest.raises(SpecError) as info:
        check_address(address)
    assert want in str(info.value) and len(str(info.value)) < 400


# --------------------------------------------------------------------------------------------------
# the command line, in process and as real processes


def test_cli_silent_scheduler_one_line_exit_1_nothing_written(peer_factory, tmp_path, capsys, monkeypatch):
    import dask

    peer = peer_factory()
    (tmp_path / "good.toml").write_text(GOOD_SWEEP)
    monkeypatch.chdir(tmp_path)
    t0 = time.perf_counter()
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        rc = main(["run", "good.toml", "--store", "x.zarr", "--scheduler", peer.address, "--no-progress"])
    assert time.perf_counter() - t0 < 10
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1, err
    assert "sent no Dask handshake within 1 s" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.toml"]


def _cli(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        [*cusweep_exe(), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
    )


def _one_line(p: subprocess.CompletedProcess, code: int, want: str) -> None:
    assert p.returncode == code, (p.returncode, p.stderr[-2000:])
    assert "Traceback" not in p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr[-2000:]
    assert want in lines[0], lines[0]


@pytest.mark.parametrize("kind", ["silent", "http", "huge-length"])
def test_real_process_against_hostile_peers(peer_factory, tmp_path, kind):
    peer = peer_factory(b"" if kind == "silent" else JUNK[kind])
    (tmp_path / "good.toml").write_text(GOOD_SWEEP)
    t0 = time.perf_counter()
    argv = ["run", "good.toml", "--store", "x.zarr", "--scheduler", peer.address, "--no-progress"]
    p = _cli(argv, tmp_path, env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}, timeout=60)
    assert time.perf_counter() - t0 < 30
    want = "sent no Dask handshake within 2 s" if kind == "silent" else "is not a Dask scheduler"
    _one_line(p, 1, want)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["good.toml"]


@pytest.mark.parametrize(
    ("args", "code", "want"),
    [
        (["--scheduler", "inproc://127.0.0.1/1/1"], 2, "inproc:// scheduler lives inside one process"),
        (["--scheduler", "ucx://127.0.0.1:8786"], 2, "not ucx://"),
        (["--store", "http://"], 1, "cannot read the store over HTTP"),
        (["--store", "http://127.0.0.1:9/x.zarr"], 1, "over HTTP (ClientConnectorError"),
        (["--store", "a" * 300 + ".zarr"], 2, "File name too long"),
    ],
)
def test_real_process_addresses_and_stores(tmp_path, args, code, want):
    (tmp_path / "good.toml").write_text(GOOD_SWEEP)
    p = _cli(["run", "good.toml", "--no-progress", *([] if "--store" in args else ["--store", "x.zarr"]),
              *args], tmp_path)
    _one_line(p, code, want)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["good.toml"]


@pytest.mark.parametrize("command", [["status"], ["query", "-", "n_coh > 1", "--count"]])
def test_readers_of_an_unreachable_http_store(tmp_path, command):
    args = [c if c != "-" else "http://127.0.0.1:9/x.zarr" for c in command]
    if len(args) == 1:
        args.append("http://127.0.0.1:9/x.zarr")
    p = _cli(args, tmp_path)
    _one_line(p, 1, "cannot read the store over HTTP")


@pytest.mark.parametrize("command", [["status", "STORE"], ["status", "STORE", "--verify"],
                                     ["query", "STORE", "n_coh > 1", "--count"]])
def test_readers_of_a_path_too_long(tmp_path, command):
    p = _cli([c if c != "STORE" else "b" * 300 + ".zarr" for c in command], tmp_path)
    _one_line(p, 2, "File name too long")


# --------------------------------------------------------------------------------------------------
# the local cluster speaks TLS with credentials made for the run: strangers cannot connect

INTRUDER = """
import os, sys
from distributed import Client
from distributed.security import Security

address, how = sys.argv[1], sys.argv[2]
kwargs = {"timeout": "4s", "set_as_default": False}
if how == "plain-tcp":
    address = address.replace("tls://", "tcp://")
elif how == "stranger-certificate":
    kwargs["security"] = Security.temporary()  # a certificate from another CA
try:
    client = Client(address, **kwargs)
except BaseException as exc:
    print("refused", type(exc).__name__)
    sys.exit(0)
print("CONNECTED", client.run_on_scheduler(os.getpid))
client.close()
"""


@pytest.mark.timeout(240)
def test_the_local_cluster_refuses_unauthenticated_clients(tmp_path):
    from cusweep.execute import _LocalClusterStart

    start = _LocalClusterStart(1, False)
    try:
        client = start.get()
        address = client.scheduler.address
        assert address.startswith("tls://127.0.0.1:")
        assert client.submit(int, "7").result() == 7  # the run's own client works
        # a raw plain-TCP peer gets no Dask handshake from the scheduler (it waits for a TLS hello)
        with pytest.raises(CusweepError, match="sent no Dask handshake"):
            check_scheduler(address.replace("tls://", "tcp://"), timeout=2.0)
        for how in ("plain-tcp", "no-certificate", "stranger-certificate"):
            p = subprocess.run([sys.executable, "-c", INTRUDER, address, how], capture_output=True,
                               text=True, timeout=120, cwd=tmp_path)
            assert p.stdout.startswith("refused"), (how, p.stdout, p.stderr[-2000:])
        assert client.submit(int, "8").result() == 8  # and the run goes on
    finally:
        start.close()
