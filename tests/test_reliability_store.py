"""Issue 19, the store: the run lock is atomic under simultaneous starts, a store copied mid-run resumes
the blocks whose chunk files are missing, damaged ledger chunks are rebuilt, verify covers coordinates
and metadata, and ``==`` in queries never treats inf as equal to a finite value.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from cusweep import execute, store
from cusweep.errors import StoreError
from cusweep.plan import make_plan
from cusweep.spec import loads

SWEEP = """\
name = "rel"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
chunk_mb = 0.01

[axes]
period = { start = "3 um", stop = "60 um", num = 36, spacing = "log" }
amplitude = { start = "0.1 angstrom", stop = "3 angstrom", num = 20 }
energy = { values = ["0.5 GeV", "8 GeV", "13.6 GeV"] }
sigma_z = { values = ["0.05 um", "9 um"] }
bunching = { values = [0.0, 0.3, 1.0] }
"""

# --------------------------------------------------------------------------------------------------
# the lock: exactly one holder when several processes start at once

LOCKER = textwrap.dedent(
    """
    import json, os, sys, time
    from cusweep import store
    from cusweep.errors import StoreError

    base, me, trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
    open(os.path.join(base, f"ready-{me}"), "w").close()
    go = os.path.join(base, "go")
    while not os.path.exists(go):
        time.sleep(0.005)
    t0 = float(open(go).read())
    out = []
    for i in range(trials):
        start = t0 + 0.3 * i
        time.sleep(max(0.0, start - time.time() - 0.01))
        while time.time() < start:
            pass
        try:
            with store.lock(os.path.join(base, f"s{i}.zarr")):
                got = time.time()
                time.sleep(max(0.05, start + 0.25 - got))  # held to the end of the trial's slot
                out.append([i, "held", [got, time.time()]])
        except StoreError as exc:
            out.append([i, "refused", str(exc)])
        except Exception as exc:
            out.append([i, "error", repr(exc)])
    with open(os.path.join(base, f"out-{me}.json"), "w") as fh:
        json.dump(out, fh)
    """
)


@pytest.mark.timeout(240)
def test_simultaneous_starts_have_exactly_one_lock_holder(tmp_path):
    procs_n, trials = 4, 30
    procs = [
        subprocess.Popen([sys.executable, "-c", LOCKER, str(tmp_path), str(k), str(trials)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in range(procs_n)
    ]
    try:
        deadline = time.time() + 120
        while sum((tmp_path / f"ready-{k}").exists() for k in range(procs_n)) < procs_n:
            assert time.time() < deadline, "the lockers did not start"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.05)
        (tmp_path / "go.tmp").write_text(str(time.time() + 0.5))
        os.replace(tmp_path / "go.tmp", tmp_path / "go")
        for p in procs:
            _, err = p.communicate(timeout=150)
            assert p.returncode == 0, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    results = [json.loads((tmp_path / f"out-{k}.json").read_text()) for k in range(procs_n)]
    single = 0
    for i in range(trials):
        outcomes = [r[i] for r in results]
        assert all(o[1] in ("held", "refused") for o in outcomes), (i, outcomes)
        held = sorted(o[2] for o in outcomes if o[1] == "held")
        # one holder at a time (a process the machine started late may take the lock after it was released)
        assert held and all(a[1] <= b[0] for a, b in zip(held, held[1:], strict=False)), (i, outcomes)
        single += len(held) == 1
        for o in outcomes:
            if o[1] == "refused":
                assert "is being written by another cusweep run" in o[2] and "\n" not in o[2]
    assert single >= trials // 4  # the starts were simultaneous: often one holder and three refusals
    # every store's _cusweep group is a valid Zarr group holding the lock file, nothing else went wrong
    for i in range(trials):
        meta = tmp_path / f"s{i}.zarr" / store.META_GROUP
        assert sorted(p.name for p in meta.iterdir()) == [store.LOCK_GROUP, "zarr.json"]
        assert sorted(zarr.open_group(str(meta), mode="r").group_keys()) == [store.LOCK_GROUP]


def test_lock_is_released_and_taken_again(tmp_path):
    path = str(tmp_path / "s.zarr")
    with store.lock(path):
        with pytest.raises(StoreError, match="is being written by another cusweep run"), store.lock(path):
            pass
    with store.lock(path):  # released on exit
        pass


@pytest.fixture
def no_flock(monkeypatch):
    import fcntl

    def flock(fd, op):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", flock)


def test_without_flock_an_exclusive_holder_group_locks(tmp_path, no_flock):
    path = str(tmp_path / "s.zarr")
    holder = tmp_path / "s.zarr" / store.META_GROUP / store.HOLDER_GROUP / "zarr.json"
    with store.lock(path):
        assert json.loads(holder.read_text())["attributes"]["pid"] == os.getpid()
        with pytest.raises(StoreError, match=r"run_lock_holder\); wait for it"), store.lock(path):
            pass
        # the holder is a valid Zarr group: listing the store does not warn (warnings are errors here)
        zarr.open_group(str(tmp_path / "s.zarr" / store.META_GROUP), mode="r").members()
    assert not holder.parent.exists()
    # a holder left by a process of this host that no longer runs is taken over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    holder.parent.mkdir()
    holder.write_text(json.dumps({"zarr_format": 3, "node_type": "group",
                                  "attributes": {"host": os.uname().nodename, "pid": int(dead.stdout)}}))
    with store.lock(path):
        assert json.loads(holder.read_text())["attributes"]["pid"] == os.getpid()


def test_without_flock_nor_exclusive_mkdir_one_line(tmp_path, no_flock, monkeypatch):
    real_mkdir = os.mkdir

    def mkdir(name, *args, **kwargs):
        if str(name).endswith(store.HOLDER_GROUP):
            raise OSError(errno.EOPNOTSUPP, "Operation not supported", name)
        return real_mkdir(name, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    path = tmp_path / "s.zarr"
    with pytest.raises(StoreError, match="supports neither flock nor an exclusive mkdir") as info:
        with store.lock(str(path)):
            pass
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------------------------------
# runs on a small store (this module's own cluster client)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, local_client):
    path = tmp_path_factory.mktemp("ref") / "ref.zarr"
    execute.run_sweep(loads(SWEEP), str(path), local_client)
    return path


def _copy(reference: Path, tmp_path: Path) -> Path:
    path = tmp_path / "copy.zarr"
    shutil.copytree(reference, path)
    return path


def _data(path: Path) -> dict[str, np.ndarray]:
    root = zarr.open_group(str(path), mode="r")
    return {n: np.asarray(a[...]) for n, a in root.arrays() if n not in store.BOOKKEEPING}


def _same(a: Path, b: Path) -> None:
    da, db = _data(a), _data(b)
    assert sorted(da) == sorted(db)
    for n in da:
        np.testing.assert_array_equal(da[n], db[n], err_msg=n)


def test_a_store_copied_mid_run_recomputes_blocks_with_missing_chunks(reference, local_client, tmp_path):
    path = _copy(reference, tmp_path)
    plan = execute.stored_plan(str(path))
    # a copy that caught the ledger but not all chunk files: three done blocks lose one chunk file each
    lost = [1, 4, 7]
    for b in lost:
        index = plan.block_index(b)
        name = plan.owned_outputs(index)[0]
        key = [str(index[plan.dims.index(d)]) for d in plan.var_dims[name]]
        os.remove(path / name / "c" / Path(*key))
    assert store.missing_chunks(str(path), plan) == lost
    notes: list[str] = []
    summary = execute.run_sweep(loads(SWEEP), str(path), local_client, echo=notes.append)
    assert summary.computed == len(lost)
    assert any("3 block(s) marked done" in n and "chunk files missing" in n for n in notes), notes
    assert store.missing_chunks(str(path), plan) == []
    assert execute.verify(str(path)) == []
    _same(path, reference)


def _damage_cell(path: Path, array: str, block: int, how: str) -> None:
    chunk = path / array / "c" / str(block)
    if how == "garble":
        chunk.write_bytes(b"\x00garbage\xff" * 3)
    elif how == "truncate":
        data = chunk.read_bytes()
        chunk.write_bytes(data[: len(data) // 2])
    else:
        raise ValueError(how)


@pytest.mark.parametrize("array", [store.LEDGER, store.CHECKSUMS])
@pytest.mark.parametrize("how", ["garble", "truncate"])
def test_a_damaged_ledger_chunk_is_rebuilt(reference, local_client, tmp_path, array, how):
    path = _copy(reference, tmp_path)
    n = make_plan(loads(SWEEP)).n_blocks
    _damage_cell(path, array, 2, how)
    # status answers (the damaged cell counts as not done, or its checksum as unknown)
    done, total = execute.status(str(path))
    assert total == n and done == (n - 1 if array == store.LEDGER else n)
    # verify answers: the block whose checksum is unreadable is listed
    bad = execute.verify(str(path))
    assert bad == ([] if array == store.LEDGER else [2])
    # repair clears what it cannot trust; the run recomputes it, identical to the reference
    with store.lock(str(path)):
        execute.repair(str(path))
    summary = execute.run_sweep(loads(SWEEP), str(path), local_client)
    assert summary.computed == 1
    assert execute.status(str(path)) == (n, n)
    assert execute.verify(str(path)) == []
    _same(path, reference)


# --------------------------------------------------------------------------------------------------
# verify covers coordinates and metadata


def test_verify_detects_altered_coordinates_and_repair_rewrites_them(reference, tmp_path):
    path = _copy(reference, tmp_path)
    root = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    period = np.asarray(root["period"][...])
    root["period"][5] = period[5] * 1.01
    with pytest.raises(StoreError, match=r"coordinate 'period' differs from the one written") as info:
        execute.verify(str(path))
    assert "\n" not in str(info.value)
    with store.lock(str(path)):
        execute.repair(str(path))
    assert execute.verify(str(path)) == []
    np.testing.assert_array_equal(zarr.open_group(str(path), mode="r")["period"][...], period)


@pytest.mark.parametrize("where", ["array", "consolidated"])
def test_verify_detects_deleted_metadata(reference, tmp_path, where):
    path = _copy(reference, tmp_path)
    if where == "array":
        meta = path / "n_coh" / "zarr.json"
        doc = json.loads(meta.read_text())
        del doc["attributes"]["units"]
        meta.write_text(json.dumps(doc))
    else:
        meta = path / "zarr.json"
        doc = json.loads(meta.read_text())
        del doc["consolidated_metadata"]["metadata"]["n_coh"]["attributes"]["long_name"]
        meta.write_text(json.dumps(doc))
    with pytest.raises(StoreError, match=r"metadata of 'n_coh' differs from the one written") as info:
        execute.verify(str(path))
    assert "\n" not in str(info.value)


def test_verify_of_an_intact_store_passes(reference):
    assert execute.verify(str(reference)) == []


# --------------------------------------------------------------------------------------------------
# == with inf


def test_equality_never_treats_inf_as_equal_to_a_finite_value():
    from cusweep.query import _cmp

    inf = float("inf")
    a = np.array([inf, 5.0, np.nan, -inf, 1.0])
    np.testing.assert_array_equal(_cmp(a, 5.0, "=="), [False, True, False, False, False])
    np.testing.assert_array_equal(_cmp(a, inf, "=="), [True, False, False, False, False])
    np.testing.assert_array_equal(_cmp(a, 5.0, "<="), [False, True, False, True, True])
    np.testing.assert_array_equal(_cmp(a, 5.0, "!="), [True, False, True, True, True])
    assert bool(_cmp(1.0, 1.0 + 1e-12, "==")) and not bool(_cmp(1e308, -1e308, "=="))


def test_cli_on_a_damaged_ledger_answers_and_repairs(reference, local_client, tmp_path, capsys):
    from cusweep.cli import main

    path = _copy(reference, tmp_path)
    sweep = tmp_path / "rel.toml"
    sweep.write_text(SWEEP)
    n = make_plan(loads(SWEEP)).n_blocks
    _damage_cell(path, store.LEDGER, 3, "garble")
    _damage_cell(path, store.CHECKSUMS, 5, "truncate")
    assert main(["status", str(path)]) == 1
    out, err = capsys.readouterr()
    assert f"{n - 1}/{n} blocks done, incomplete" in out and err == ""
    assert main(["status", str(path), "--verify"]) == 1
    out, err = capsys.readouterr()
    assert "1 block(s) fail their checksum: [5]" in out and err == ""
    address = local_client.scheduler.address
    argv = ["run", str(sweep), "--store", str(path), "--repair", "--scheduler", address, "--no-progress"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "2 damaged block(s) cleared for recomputation: [3, 5]" in err
    assert "2 blocks computed" in out
    assert main(["status", str(path), "--verify"]) == 0
    capsys.readouterr()
    _same(path, reference)


@pytest.mark.parametrize("cut", ["before-ledger", "before-consolidation"])
def test_readers_refuse_a_store_cut_short_in_its_template_and_run_completes_it(
    reference, local_client, tmp_path, capsys, cut
):
    from cusweep.cli import main

    path = tmp_path / "cut.zarr"
    plan = make_plan(loads(SWEEP))
    with store.lock(str(path)):
        store.write_template(str(path), plan)
    # what a run stopped at that step leaves: no ledger, or no consolidated metadata yet
    doc = json.loads((path / "zarr.json").read_text())
    doc.pop("consolidated_metadata", None)
    (path / "zarr.json").write_text(json.dumps(doc))
    if cut == "before-ledger":
        shutil.rmtree(path / store.LEDGER)
        shutil.rmtree(path / store.CHECKSUMS)
    for argv in (["query", str(path), "feasible", "--count"], ["best", str(path)],
                 ["map", str(path), "--x", "period", "--y", "amplitude", "-o", str(tmp_path / "m.png")]):
        assert main(argv) == 1, argv
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and "template was cut short" in err, (argv, err)
    assert not (tmp_path / "m.png").exists()
    summary = execute.run_sweep(loads(SWEEP), str(path), local_client)
    assert summary.computed == plan.n_blocks
    _same(path, reference)


@pytest.mark.parametrize(
    ("output", "code", "want"),
    [
        ("/proc/cusweep-map.png", 1, "No such file or directory ('/proc/cusweep-map.png')"),
        ("/sys/cusweep-map.png", 1, "('/sys/cusweep-map.png'); check the permissions of that path"),
        ("m" * 300 + ".png", 2, "File name too long ('mmmm"),
    ],
)
def test_an_unwritable_map_output_is_one_line(reference, tmp_path, capsys, monkeypatch, output, code, want):
    from cusweep.cli import main

    monkeypatch.chdir(tmp_path)
    at = ["--at", "energy=8 GeV", "sigma_z=9 um", "bunching=1"]
    argv = ["map", str(reference), "--x", "period", "--y", "amplitude", *at, "-o", output]
    assert main(argv) == code
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and want in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_garbled_bookkeeping_group_is_reported_and_rewritten(reference, local_client, tmp_path, capsys):
    from cusweep.cli import main

    path = _copy(reference, tmp_path)
    (path / store.META_GROUP / "zarr.json").write_text("{junk")
    assert main(["status", str(path), "--verify"]) == 1
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "the bookkeeping group _cusweep cannot be read" in err, err
    sweep = tmp_path / "rel.toml"
    sweep.write_text(SWEEP)
    address = local_client.scheduler.address
    argv = ["run", str(sweep), "--store", str(path), "--repair", "--scheduler", address, "--no-progress"]
    assert main(argv) == 0
    capsys.readouterr()
    assert store.has_integrity(str(path))  # recorded again by the run
    assert main(["status", str(path), "--verify"]) == 0
    _same(path, reference)


@pytest.mark.parametrize("settle", [0.0, 0.5])
def test_simultaneous_leases_on_an_object_store_have_one_holder(monkeypatch, settle):
    """The lease of fsspec stores (memory://, in threads of one process, with an object store's write
    latency: run k's lease write lands 0.1 (k + 1) s after it is sent): of runs that find the lease free at
    the same moment, one proceeds only when each reads the lease back after the others' writes landed."""
    import threading
    import uuid

    real_open_group = zarr.open_group

    def slow_writes(store_like, *args, mode=None, **kwargs):
        if mode == "w" and str(store_like).endswith("/lease"):
            time.sleep(0.1 * (1 + int(threading.current_thread().name.removeprefix("run-"))))
        return real_open_group(store_like, *args, mode=mode, **kwargs)

    monkeypatch.setattr(zarr, "open_group", slow_writes)
    base = f"memory://cusweep-lease-{uuid.uuid4().hex}"
    trials, n, doubled = 6, 3, 0
    for i in range(trials):
        path = f"{base}/s{i}.zarr"
        barrier = threading.Barrier(n)
        outcomes: list[str] = []

        def attempt(path: str, barrier: threading.Barrier, outcomes: list[str]) -> None:
            barrier.wait()
            try:
                with store._lease(path, settle=settle):
                    outcomes.append("held")
                    time.sleep(0.3)
            except StoreError as exc:
                assert "is being written by" in str(exc)
                outcomes.append("refused")
            except Exception as exc:  # recorded: the test fails on it
                outcomes.append(repr(exc))

        threads = [threading.Thread(target=attempt, args=(path, barrier, outcomes), name=f"run-{k}")
                   for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert all(o in ("held", "refused") for o in outcomes), outcomes
        doubled += outcomes.count("held") > 1
    if settle:
        assert doubled == 0
    else:  # read back at once, the race shows: the pause is what makes the lease hold
        assert doubled == trials


def test_readers_refuse_altered_coordinates_until_repaired(reference, tmp_path, capsys):
    from cusweep.cli import main

    path = _copy(reference, tmp_path)
    root = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    energy = np.asarray(root["energy"][...])
    root["energy"][...] = energy * np.array([1.0, 1.0, 1.5])  # 13.6 GeV now reads as 20.4 GeV
    assert main(["query", str(path), "energy == 13.6 GeV", "--count"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "the coordinate 'energy' differs" in err, err
    with store.lock(str(path)):
        assert execute.repair(str(path)) == []
    assert main(["query", str(path), "energy == 13.6 GeV", "--count"]) == 0
    out, _ = capsys.readouterr()
    assert int(out) == 36 * 20 * 2 * 3  # the points of that energy (every period, amplitude, sigma_z, b)
