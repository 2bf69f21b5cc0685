"""A store's names, dims, units and coordinates without xarray or Dask: what a query needs to check its
names and to evaluate its coordinate-only terms (``cusweep.query.prune``) before any data is read.

``Skeleton`` answers the few ``xarray.Dataset`` questions those steps ask (``sizes``, ``coords``,
``data_vars``, ``attrs``, ``ds[name]`` with ``dims``, ``dtype``, ``attrs`` and, for a coordinate, its
values); a coordinate is an ``Axis``, a numpy array that keeps its dim through numpy arithmetic, so the one
query evaluator runs on it unchanged. Variables are ``Placeholder``\\ s: their values are never read.
Built by ``cusweep.stored.skeleton`` from the store's consolidated metadata with zarr alone; a block of the
store read for a query (``cusweep.query.block_values``) is a ``Skeleton`` of ``Axis`` arrays.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

__all__ = ["Axis", "Placeholder", "Skeleton"]


class Axis(np.ndarray):  # type: ignore[type-arg]
    """A coordinate (1-D), or a variable on a block of the store (every dim of the block, length 1 along the
    dims it does not have: numpy broadcasting is then xarray's broadcasting by dim name): a numpy array
    with ``dims`` (kept by numpy operations), ``attrs`` and ``values``."""

    dims: tuple[str, ...]
    attrs: dict[str, Any]

    def __new__(cls, values: Any, dims: str | tuple[str, ...], attrs: Mapping[str, Any] | None = None
                ) -> Axis:
        obj = np.asarray(values).view(cls)
        dims = (dims,) if isinstance(dims, str) else tuple(dims)
        obj.dims = dims if obj.ndim == len(dims) else ()
        obj.attrs = dict(attrs or {})
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        dims = getattr(obj, "dims", ())
        self.dims = dims if self.ndim == len(dims) else ()
        self.attrs = {}

    def __array_wrap__(self, arr: Any, context: Any = None, return_scalar: bool = False) -> Any:
        out = super().__array_wrap__(arr, context, return_scalar)
        return out[()] if isinstance(out, np.ndarray) and out.ndim == 0 else out

    @property
    def values(self) -> np.ndarray:
        return np.asarray(self)

    @property
    def sizes(self) -> dict[str, int]:
        return dict(zip(self.dims, self.shape, strict=True))

    def transpose(self, *dims: Any) -> Axis:  # type: ignore[override]  # always in the block's dim order
        return self


class Placeholder:
    """A data variable known by its dims, shape, dtype and attrs only."""

    def __init__(self, dims: tuple[str, ...], shape: tuple[int, ...], dtype: Any, attrs: Mapping[str, Any]):
        self.dims = dims
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.attrs = dict(attrs)
        self.ndim = len(dims)

    @property
    def sizes(self) -> dict[str, int]:
        return dict(zip(self.dims, self.shape, strict=True))

    @property
    def values(self) -> np.ndarray:
        raise TypeError("a Skeleton's variables hold no values; open the dataset (StoredSweep.ds)")


class Skeleton(Mapping[str, Any]):
    """The coordinates (``Axis``) and variables (``Placeholder``) of a store, and its group attrs."""

    def __init__(self, coords: Mapping[str, Axis], data_vars: Mapping[str, Placeholder | Axis],
                 attrs: Mapping[str, Any], sizes: Mapping[str, int]):
        self.coords = dict(coords)
        self.data_vars = dict(data_vars)
        self.attrs = dict(attrs)
        self.sizes = dict(sizes)
        self.dims = tuple(self.sizes)

    def __getitem__(self, name: str) -> Any:
        return self.coords[name] if name in self.coords else self.data_vars[name]

    def __iter__(self) -> Iterator[str]:
        return iter([*self.coords, *self.data_vars])

    def __len__(self) -> int:
        return len(self.coords) + len(self.data_vars)

    @property
    def variables(self) -> dict[str, Any]:
        return {**self.coords, **self.data_vars}
