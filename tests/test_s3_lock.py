"""The run lock of S3 stores, by conditional writes (If-None-Match: *), against a local moto server:
of runs that start at once exactly one proceeds, over many interleavings; an expired or orphaned lease
is taken over."""

import json
import os
import threading
import time
import uuid

import pytest

from cusweep import store

from .procs import Procs
from .test_cluster import _close_s3_sessions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory):
    procs = Procs(tmp_path_factory.mktemp("s3procs"))
    try:
        _, endpoint = procs.s3_server()
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
               "AWS_EC2_METADATA_DISABLED": "true", "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
               "AWS_CONFIG_FILE": os.devnull}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        s3fs.S3FileSystem().mkdir("locks")
        yield env
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _close_s3_sessions()
        procs.close()


def test_the_server_refuses_a_second_conditional_create(s3_env):
    import s3fs

    fs = s3fs.S3FileSystem()
    key = f"locks/{uuid.uuid4().hex}"
    fs.pipe_file(key, b"a", mode="create")
    with pytest.raises(FileExistsError):
        fs.pipe_file(key, b"b", mode="create")
    assert fs.cat(key) == b"a"


def test_concurrent_runs_never_both_hold_the_lock(s3_env):
    trials, runners = 12, 4
    singles = 0
    for trial in range(trials):
        url = f"s3://locks/t{trial}-{uuid.uuid4().hex[:6]}/sweep.zarr"
        barrier = threading.Barrier(runners)
        spans: list[tuple[float, float]] = []
        refused: list[str] = []
        errors: list[BaseException] = []

        def run(k: int, url=url, barrier=barrier, spans=spans, refused=refused, errors=errors,
                trial=trial) -> None:
            try:
                barrier.wait()
                time.sleep(0.01 * ((k + trial) % runners))  # a different interleaving in every trial
                with store.lock(url):
                    t0 = time.monotonic()
                    time.sleep(0.3)
                    spans.append((t0, time.monotonic()))
            except store.StoreLocked as exc:
                refused.append(str(exc))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(k,)) for k in range(runners)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        assert spans, "nobody took the lock"
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), (trial, spans)
        assert len(spans) + len(refused) == runners
        assert all("is being written by pid" in r for r in refused)
        singles += len(spans) == 1
    assert singles >= trials // 2  # started together: mostly one holder, the others refused at once


def _claim(url: str, gen: int, attrs: dict) -> None:
    import s3fs

    fs = s3fs.S3FileSystem()
    key = url[len("s3://"):] + f"/{store.META_GROUP}/{store.CLAIMS}/g{gen:012d}/zarr.json"
    fs.pipe_file(key, json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attrs}).encode())


def test_an_expired_or_orphaned_lease_is_taken_over(s3_env):
    url = f"s3://locks/{uuid.uuid4().hex[:8]}/sweep.zarr"
    # a live lease of another machine: refused
    _claim(url, 1, {"holder": "pid 1 on elsewhere", "host": "elsewhere", "pid": 1,
                    "expires": time.time() + 60})
    with pytest.raises(store.StoreLocked, match="pid 1 on elsewhere"), store.lock(url):
        pass
    # the same lease expired (its coordinator was killed): taken over
    _claim(url, 1, {"holder": "pid 1 on elsewhere", "host": "elsewhere", "pid": 1,
                    "expires": time.time() - 1})
    with store.lock(url), pytest.raises(store.StoreLocked, match=f"pid {os.getpid()}"), store.lock(url):
        pass
    # a live lease of a process of this host that is gone: taken over at once
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    _claim(url, 3, {"holder": f"pid {dead}", "host": os.uname().nodename, "pid": int(dead),
                    "expires": time.time() + 60})
    with store.lock(url):
        pass
    with store.lock(url):  # released on exit
        pass
