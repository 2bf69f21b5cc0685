"""Dask worker preload used by the cluster tests only (``dask worker --preload tests/slow_blocks.py``, or
``DASK_DISTRIBUTED__WORKER__PRELOAD`` for a LocalCluster): every block task first sleeps
``CUSWEEP_TEST_BLOCK_SLEEP`` seconds, so that a test can kill a worker, the scheduler or the run
while blocks are still pending. The stored values are unchanged; the engine itself has no test hook."""

import os
import time

from cusweep import execute, model


def _slow_evaluate(*args, **kwargs):
    time.sleep(float(os.environ.get("CUSWEEP_TEST_BLOCK_SLEEP") or 0))
    return model.evaluate(*args, **kwargs)  # the original (dask may load a preload twice: no recursion)


execute.evaluate = _slow_evaluate
