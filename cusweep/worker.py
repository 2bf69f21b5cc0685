"""Imported by every LocalCluster worker as it starts (distributed ``preload``): the modules a block task
needs, so that they load while the coordinator writes the store's template, not on the first block."""

import numcodecs.blosc  # noqa: F401  (zarr's Blosc codec)
import xxhash  # noqa: F401
import zarr  # noqa: F401

from . import execute, store  # noqa: F401
