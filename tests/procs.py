"""Real server processes for the cluster tests: a Dask scheduler and workers, a local S3 server; every
process in its own session (process group), all killed at the end, also when a test fails."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HOST = "127.0.0.1"
#: preload for test workers only: each block sleeps CUSWEEP_TEST_BLOCK_SLEEP seconds (so that a test can
#: act "mid-run"); the engine has no test hook
SLOW_BLOCKS = str(Path(__file__).with_name("slow_blocks.py"))


def executable(name: str) -> str:
    """A console script of this environment (beside sys.executable), else on PATH; never skipped."""
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(
            f"the cluster tests need the `{name}` executable (pip install -e '.[test]'); not found "
            f"beside {sys.executable} nor on PATH"
        )
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_for(predicate, timeout: float, what: str, proc: Proc | None = None, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(
                f"{proc.name} exited ({proc.popen.returncode}) while waiting for {what}:\n"
                f"{proc.log()[-3000:]}"
            )
        time.sleep(interval)
    raise TimeoutError(
        f"timed out after {timeout} s waiting for {what}"
        + (f"; {proc.name} log:\n{proc.log()[-3000:]}" if proc else "")
    )


class Proc:
    def __init__(self, name: str, popen: subprocess.Popen, logfile: Path):
        self.name, self.popen, self.logfile = name, popen, logfile

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 30) -> None:
        """Signal the whole process group (a `dask worker` is a nanny with a worker child)."""
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass
        if sig == signal.SIGKILL:
            self.popen.wait(timeout=timeout)
            # the group may outlive its leader for a moment
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _group_alive(self.popen.pid):
                time.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class Procs:
    """Start processes in new sessions; ``close`` SIGKILLs every process group that was started."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.env = dict(env or {})  # on top of os.environ as it is when a process starts
        self.started: list[Proc] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        logfile = self.workdir / f"{name}.log"
        with open(logfile, "wb") as log:
            popen = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env, **(env or {})},
                start_new_session=True,
                cwd=self.workdir,
            )
        proc = Proc(name, popen, logfile)
        self.started.append(proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self.started):
            proc.kill(signal.SIGKILL)

    # --- Dask ---------------------------------------------------------------------------------------
    def scheduler(
        self, name: str = "scheduler", tls: dict[str, Path] | None = None, timeout: float = 60
    ) -> tuple[Proc, str]:
        """`dask scheduler` on 127.0.0.1, a free port, no dashboard; returns (process, address)."""
        sfile = self.workdir / f"{name}.json"
        sfile.unlink(missing_ok=True)
        argv = [
            executable("dask"),
            "scheduler",
            "--host",
            HOST,
            "--port",
            "0",
            "--no-dashboard",
            "--dashboard-address",
            f"{HOST}:0",
            "--scheduler-file",
            str(sfile),
        ]
        if tls:
            argv += [
                "--protocol",
                "tls",
                "--tls-ca-file",
                str(tls["ca"]),
                "--tls-cert",
                str(tls["scheduler"]),
                "--tls-key",
                str(tls["scheduler-key"]),
            ]
        proc = self.start(name, argv)

        def address() -> str | None:
            try:
                return json.loads(sfile.read_text())["address"]
            except (OSError, ValueError, KeyError):
                return None

        return proc, wait_for(address, timeout, f"{name} to write {sfile.name}", proc)

    def workers(self, address: str, n: int, timeout: float = 60, **kwargs) -> list[Proc]:
        """``n`` workers started together (``worker1``, ...), each registered when this returns."""
        started = [self.worker(address, name=f"worker{i}", wait=0, **kwargs) for i in range(1, n + 1)]
        for proc in started:
            wait_for(lambda p=proc: "Registered to:" in p.log(), timeout, f"{proc.name} to register", proc)
        return started

    def worker(
        self,
        address: str,
        name: str = "worker",
        tls: dict[str, Path] | None = None,
        env: dict[str, str] | None = None,
        slow: float = 0.0,
        wait: float = 60,
    ) -> Proc:
        """`dask worker` (a nanny and one single-threaded worker process) on 127.0.0.1; waits (up to ``wait``
        seconds, 0: not at all) until it has registered with the scheduler."""
        argv = [
            executable("dask"),
            "worker",
            address,
            "--nworkers",
            "1",
            "--nthreads",
            "1",
            "--host",
            HOST,
            "--no-dashboard",
            "--dashboard-address",
            f"{HOST}:0",
            "--memory-limit",
            "2GiB",
            "--local-directory",
            str(self.workdir / f"{name}-space"),
            "--death-timeout",
            "60",
        ]
        if tls:
            argv += [
                "--tls-ca-file",
                str(tls["ca"]),
                "--tls-cert",
                str(tls["worker"]),
                "--tls-key",
                str(tls["worker-key"]),
            ]
        if slow:
            argv += ["--preload", SLOW_BLOCKS]
        proc = self.start(name, argv, env={**(env or {}), "CUSWEEP_TEST_BLOCK_SLEEP": str(slow)})
        if wait:
            wait_for(lambda: "Registered to:" in proc.log(), wait, f"{name} to register", proc)
        return proc

    # --- S3 -----------------------------------------------------------------------------------------
    def s3_server(self, name: str = "s3", timeout: float = 60) -> tuple[Proc, str]:
        """moto's standalone S3-compatible server on 127.0.0.1; returns (process, endpoint URL)."""
        port = free_port()
        proc = self.start(name, [executable("moto_server"), "-H", HOST, "-p", str(port)])

        def up() -> bool:
            try:
                socket.create_connection((HOST, port), timeout=0.5).close()
                return True
            except OSError:
                return False

        wait_for(up, timeout, f"{name} to listen on {HOST}:{port}", proc)
        return proc, f"http://{HOST}:{port}"


def listening(pids: list[int]) -> list[tuple[int, str, int]]:
    """(pid, ip, port) of every listening inet socket of these processes and their descendants."""
    import psutil

    out = []
    for pid in pids:
        try:
            root = psutil.Process(pid)
            family = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for p in family:
            try:
                conns = p.net_connections(kind="inet")
            except psutil.NoSuchProcess:
                continue
            out += [(p.pid, c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]
    return out
