"""Small numpy helpers shared by the formulary (no dask/xarray/zarr)."""

import numpy as np


def asfloat(x):
    """Return ``x`` as a float64 ndarray (0-d for scalars) so ufuncs broadcast uniformly."""
    return np.asarray(x, dtype=np.float64)


def out(x):
    """Return a Python float for 0-d results, the array otherwise (scalar in, scalar out)."""
    x = np.asarray(x)
    return x.item() if x.ndim == 0 else x
