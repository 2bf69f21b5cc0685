"""The run lock of S3 stores, by conditional writes (If-None-Match: *), against a local moto server:
of runs that start at once exactly one proceeds, over many interleavings; an expired or orphaned lease
is taken over. Shards hold shared claims that a plain run's lease sees, and the other way round; the run
that takes the lock removes the claims killed runs left behind."""

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


# --------------------------------------------------------------------------------------------------
# shards on S3: shared claims that a plain run's lease sees, and the other way round


def _keys(url: str, sub: str) -> list[str]:
    import s3fs

    fs = s3fs.S3FileSystem()
    root = url[len("s3://"):] + f"/{store.META_GROUP}/{sub}"
    try:
        return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(root, detail=False, refresh=True))
    except FileNotFoundError:
        return []


def test_a_plain_run_is_refused_while_shards_hold_claims(s3_env):
    url = f"s3://locks/{uuid.uuid4().hex[:8]}/sweep.zarr"
    with store.shared_claim(url, "1/4") as one, store.shared_claim(url, "3/4") as three:
        assert one and three  # shards together
        refused = r"being computed in shards \(2 shard run\(s\): 1/4, 3/4"
        with pytest.raises(store.StoreLocked, match=refused), store.lock(url):
            pass
    assert [k for k in _keys(url, store.SHARD_CLAIMS) if k != "zarr.json"] == []  # removed on exit
    with store.lock(url):  # the shards ended: the store is free
        pass


def test_a_shard_is_refused_while_a_plain_run_holds_the_store(s3_env):
    url = f"s3://locks/{uuid.uuid4().hex[:8]}/sweep.zarr"
    with store.lock(url):
        with store.shared_claim(url, "0/2") as held:
            assert not held
        assert [k for k in _keys(url, store.SHARD_CLAIMS) if k != "zarr.json"] == []  # gave its claim up
    with store.shared_claim(url, "0/2") as held:
        assert held


def test_a_shard_run_waits_for_a_plain_run_then_gives_up_in_one_line(s3_env, monkeypatch):
    from cusweep import shards
    from cusweep.spec import loads

    from .test_shards import ONE_BLOCK

    url = f"s3://locks/{uuid.uuid4().hex[:8]}/tiny.zarr"
    spec = loads(ONE_BLOCK)
    monkeypatch.setattr(shards, "TEMPLATE_WAIT", 2.0)
    with store.lock(url):
        # the plain run has not written the template yet: the shard waits for it, then gives up
        with pytest.raises(store.StoreError, match="waited 2 s for another run"):
            shards.run_shard(spec, url, (0, 1), workers=1)
    summary = shards.run_shard(spec, url, (0, 1), workers=1)  # the store free: the shard runs
    assert summary.computed == summary.blocks >= 1
    with store.lock(url):  # the template exists now: a shard refused past the template, at its claim
        with pytest.raises(store.StoreLocked, match="held alone by a plain run"):
            shards.run_shard(spec, url, (0, 1), workers=1)


def test_shards_and_a_plain_run_never_overlap(s3_env):
    trials, n_shards = 10, 3
    plain_ran = 0
    for trial in range(trials):
        url = f"s3://locks/mix{trial}-{uuid.uuid4().hex[:6]}/sweep.zarr"
        barrier = threading.Barrier(n_shards + 1)
        spans: list[tuple[str, float, float]] = []
        errors: list[BaseException] = []

        def shard(k: int, url=url, barrier=barrier, spans=spans, errors=errors, trial=trial) -> None:
            try:
                barrier.wait()
                time.sleep(0.015 * ((k + trial) % (n_shards + 1)))
                for _ in range(40):  # as run_shard: a shard that finds the store held waits, then tries again
                    with store.shared_claim(url, f"{k}/{n_shards}") as held:
                        if held:
                            t0 = time.monotonic()
                            time.sleep(0.4)
                            spans.append(("shard", t0, time.monotonic()))
                            return
                    time.sleep(0.1)
                errors.append(TimeoutError(f"shard {k} never ran"))
            except BaseException as exc:
                errors.append(exc)

        def plain(url=url, barrier=barrier, spans=spans, errors=errors, trial=trial) -> None:
            try:
                barrier.wait()
                time.sleep(0.015 * (trial % (n_shards + 1)))
                with store.lock(url):
                    t0 = time.monotonic()
                    time.sleep(0.4)
                    spans.append(("plain", t0, time.monotonic()))
            except store.StoreLocked:
                pass
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=shard, args=(k,)) for k in range(n_shards)]
        threads.append(threading.Thread(target=plain))
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        assert len([s for s in spans if s[0] == "shard"]) == n_shards  # every shard ran in the end
        plains = [s for s in spans if s[0] == "plain"]
        plain_ran += bool(plains)
        for _, a0, a1 in plains:
            for kind, b0, b1 in spans:
                if kind == "shard":
                    assert a1 <= b0 or b1 <= a0, (trial, spans)  # never at the same time
    assert 0 < plain_ran < trials  # both outcomes occurred: the interleavings differ


def test_stale_claims_left_by_killed_runs_are_removed_by_the_next_holder(s3_env):
    import subprocess
    import sys

    url = f"s3://locks/{uuid.uuid4().hex[:8]}/sweep.zarr"
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout.strip())
    here = os.uname().nodename
    # runs killed long ago (expired), and one just now (a process of this host that is gone)
    for gen in (1, 2, 3):
        _claim(url, gen, {"holder": "pid 7 on elsewhere", "host": "elsewhere", "pid": 7,
                          "expires": time.time() - 1000 + gen})
    _claim(url, 4, {"holder": f"pid {dead}", "host": here, "pid": dead, "expires": time.time() + 60})
    import s3fs

    fs = s3fs.S3FileSystem()
    claims = url[len("s3://"):] + f"/{store.META_GROUP}/{store.SHARD_CLAIMS}"
    for name, attrs in (
        ("expired", {"host": "elsewhere", "pid": 7, "shard": "0/2", "expires": time.time() - 5}),
        ("killed", {"host": here, "pid": dead, "shard": "1/2", "expires": time.time() + 60}),
    ):
        fs.pipe_file(f"{claims}/{name}/zarr.json",
                     json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attrs}).encode())
    with store.shared_claim(url, "0/2") as held:  # stale claims do not hold the store
        assert held
    # a shard removes nothing
    assert sorted(_keys(url, store.SHARD_CLAIMS)) == ["expired", "killed", "zarr.json"]
    with store.lock(url):
        assert _keys(url, store.CLAIMS) == ["g000000000005", "zarr.json"]  # the older generations removed
        assert _keys(url, store.SHARD_CLAIMS) == ["zarr.json"]  # and the stale shard claims
    with store.lock(url):  # the next run removes the generation the previous one released
        assert _keys(url, store.CLAIMS) == ["g000000000006", "zarr.json"]


def test_a_live_shard_claim_of_another_host_holds_until_it_expires(s3_env):
    import s3fs

    url = f"s3://locks/{uuid.uuid4().hex[:8]}/sweep.zarr"
    fs = s3fs.S3FileSystem()
    key = url[len("s3://"):] + f"/{store.META_GROUP}/{store.SHARD_CLAIMS}/other/zarr.json"
    attrs = {"holder": "pid 9 on node17", "host": "node17", "pid": 9, "shard": "2/8",
             "expires": time.time() + 60}
    fs.pipe_file(key, json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attrs}).encode())
    with pytest.raises(store.StoreLocked, match=r"2/8; pid 9 on node17"), store.lock(url):
        pass
    attrs["expires"] = time.time() - 1  # that shard was killed and its claim expired
    fs.pipe_file(key, json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attrs}).encode())
    with store.lock(url):
        pass


def test_cusweep_run_is_refused_in_one_line_while_a_shard_runs(s3_env, tmp_path):
    import subprocess
    import sys

    from .conftest import ROOT
    from .test_shards import ONE_BLOCK

    (tmp_path / "s.toml").write_text(ONE_BLOCK)
    url = f"s3://locks/{uuid.uuid4().hex[:8]}/tiny.zarr"
    with store.shared_claim(url, "0/3") as held:  # a shard of this machine, running
        assert held
        p = subprocess.run([sys.executable, "-m", "cusweep.cli", "run", "s.toml", "--store", url],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(ROOT), "CUSWEEP_NO_PROGRESS": "1"})
    assert p.returncode == 1, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "being computed in shards" in p.stderr, p.stderr
    assert "0/3" in p.stderr and p.stdout == ""
