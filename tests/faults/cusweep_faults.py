"""Test-only fault injection for zarr's LocalStore writes (tests/test_store_safety.py); never imported by
cusweep.

``install(control)`` wraps ``zarr.storage._local._put`` (every LocalStore write: metadata and chunks) in
this process. Each write reads the JSON file ``control`` (a missing file means no faults):

* ``"delay": s`` sleep s seconds in every write of an ``n_coh`` chunk (one per block), so that a
  run is slow enough to be interrupted at a chosen block; with ``"midwrite": true`` the sleep falls
  between the two halves of the chunk's temporary file, so a kill then lands in the middle of a write;
* ``"enospc_after": n`` with ``"counter": PATH`` after n data-chunk writes (counted across processes by
  appending a byte to PATH), every write fails like a full disk: half the bytes reach the temporary file,
  then OSError(ENOSPC).

Processes pick it up through ``tests/faults/sitecustomize.py`` (``PYTHONPATH=tests/faults`` and
``CUSWEEP_TEST_FAULTS=CONTROL``), or through ``client.run(install, control)`` on running Dask workers.
"""

from __future__ import annotations

import errno
import json
import os
import time

_installed: list[str] = []
_original: list = []


def _control(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _count(counter: str) -> int:
    try:
        return os.path.getsize(counter)
    except FileNotFoundError:
        return 0


def install(control: str) -> None:
    import zarr.storage._local as local

    if _installed:
        _installed[0] = control
        return
    _installed.append(control)
    original = local._put
    _original.append(original)

    def _put(path, value, exclusive=False):
        c = _control(_installed[0])
        key = str(path).replace(os.sep, "/")
        data_chunk = "/c/" in key and "/done/c/" not in key and "/block_checksum/c/" not in key
        if "enospc_after" in c and _count(c["counter"]) >= int(c["enospc_after"]):
            path.parent.mkdir(parents=True, exist_ok=True)
            view = memoryview(value.as_buffer_like()).cast("B")
            with local._atomic_write(path, "wb", exclusive=exclusive) as f:
                f.write(view[: len(view) // 2])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        slow = c.get("delay") and "/n_coh/c/" in key
        if slow and c.get("midwrite"):
            path.parent.mkdir(parents=True, exist_ok=True)
            view = memoryview(value.as_buffer_like()).cast("B")
            with local._atomic_write(path, "wb", exclusive=exclusive) as f:
                f.write(view[: len(view) // 2])
                f.flush()
                time.sleep(float(c["delay"]))
                written = f.write(view[len(view) // 2 :]) + len(view) // 2
        else:
            if slow:
                time.sleep(float(c["delay"]))
            written = original(path, value, exclusive=exclusive)
        if data_chunk and "counter" in c:
            fd = os.open(c["counter"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, b".")
            finally:
                os.close(fd)
        return written

    local._put = _put


def uninstall() -> None:
    import zarr.storage._local as local

    if _original:
        local._put = _original.pop()
        _installed.clear()
