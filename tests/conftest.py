import os
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# hypothesis's per-example deadline (200 ms) measures the machine's load, not the physics: a loaded CI
# runner failed formulary property tests on it; every example still runs, with no time limit
settings.register_profile("cusweep", deadline=None)
settings.load_profile("cusweep")

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("CUSWEEP_NO_PROGRESS", "1")


def cusweep_exe() -> list[str]:
    exe = Path(sys.executable).parent / "cusweep"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("cusweep")
    return [found] if found else [sys.executable, "-m", "cusweep.cli"]


@pytest.fixture(scope="session")
def local_client():
    """One LocalCluster (2 worker processes on 127.0.0.1) shared by the tests that only need a client."""
    from distributed import Client, LocalCluster

    # the scheduler's HTTP server on a free port: with :8787 taken (parallel runs), distributed retries and
    # leaks the socket of the failed attempt (a ResourceWarning, an error under filterwarnings=error)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                           silence_logs=40)
    client = Client(cluster, set_as_default=False)  # tests pass it explicitly; xarray stays local
    yield client
    client.close()
    cluster.close()


# a store across the resonance ridge of LCLS (8.3 keV at 13.6 GeV): the facility's photon-energy condition
# of best, robust, map and report (tests/test_best.py, tests/test_facility_line.py); read only
RIDGE = """
name = "ridge"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
chunk_mb = 0.01
[axes]
period = { start = "13 um", stop = "16 um", num = 25 }
amplitude = { start = "0.8 angstrom", stop = "1.6 angstrom", num = 17 }
energy = { values = ["13.6 GeV", "17.5 GeV"] }
sigma_z = "9 um"
bunching = { values = [0.1, 1.0] }
"""


@pytest.fixture(scope="session")
def ridge(tmp_path_factory, local_client):
    import cusweep

    d = tmp_path_factory.mktemp("ridge")
    (d / "ridge.toml").write_text(RIDGE)
    path = str(d / "ridge.zarr")
    cusweep.run_sweep(str(d / "ridge.toml"), path, client=local_client)
    return path
