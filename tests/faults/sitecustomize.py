"""Loaded at start-up by every Python process whose PYTHONPATH holds tests/faults (the cusweep
subprocesses of tests/test_store_safety.py and their Dask workers): installs the fault injection of
cusweep_faults when CUSWEEP_TEST_FAULTS names a control file."""

import os

if os.environ.get("CUSWEEP_TEST_FAULTS"):
    import cusweep_faults

    cusweep_faults.install(os.environ["CUSWEEP_TEST_FAULTS"])
