"""Zarr v3 store: template with attrs, chunk-aligned block writes, the per-block ``done`` ledger, a lock.

Layout of a store (a Zarr v3 group):
  <coords and variables>   as in docs/store.md, written through xarray's template (compute=False)
  done                     bool, one element and one Zarr chunk per block, set after the block's data
  block_checksum           uint64, one per block: xxh3-64 digest of the block's written chunks (for --verify)
  _cusweep/                a Zarr group holding the run lock (``lock``, fcntl.flock on local stores)
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import errno
import fcntl
import functools
import os
import shutil
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import NotAStoreError, SpecError, StoreError
from .quantities import VARIABLES

if TYPE_CHECKING:
    import xarray as xr
    import zarr

    from .plan import Plan

LEDGER = "done"
CHECKSUMS = "block_checksum"
META_GROUP = "_cusweep"
#: names that are store bookkeeping, not sweep data (dropped by ``open``)
BOOKKEEPING = (LEDGER, CHECKSUMS)


def check_path(path: str, *, new: bool = True) -> None:
    """Refuse (SpecError) a store path that cannot work: empty, an unknown or in-memory fsspec protocol
    (Dask workers are other processes), or, for a new local store, a parent directory that does not
    exist (a typo would otherwise grow a new directory tree)."""
    text = str(path)
    if not text.strip():
        raise SpecError("store: empty path; give the store's directory, e.g. sweep.zarr")
    if not is_local(text):
        protocol = text.split("://", 1)[0]
        if protocol == "memory":
            raise SpecError(
                f"store: {text}: an in-memory store lives in one process and Dask workers cannot reach "
                "it; give a directory path or an object-store URL such as s3://bucket/sweep.zarr"
            )
        import fsspec

        try:
            fsspec.get_filesystem_class(protocol)
        except (ValueError, ImportError) as exc:
            raise SpecError(
                f"store: {text}: the protocol {protocol}:// is not available ({' '.join(str(exc).split())}"
                "); give a directory path or a URL such as s3://bucket/sweep.zarr (pip install s3fs)"
            ) from None
        return
    p = os.path.abspath(_local(text))
    parent = os.path.dirname(p)
    if new and not os.path.lexists(p) and not os.path.isdir(parent):
        raise SpecError(
            f"store: the directory {parent} does not exist; create it first, or check the path {text}"
        )


def is_local(path: str) -> bool:
    return "://" not in str(path) or str(path).startswith("file://")


def _local(path: str) -> str:
    return str(path)[len("file://") :] if str(path).startswith("file://") else str(path)


def exists(path: str) -> bool:
    import zarr

    try:
        zarr.open_group(_store_arg(path), mode="r")
        return True
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError, ValueError):
        return False


def _store_arg(path: str) -> Any:
    return _local(path) if is_local(path) else path


def compressors() -> tuple[Any, ...]:
    """Codec for every stored array: Blosc lz4 (level 5) with byte shuffle. Measured on a block of the
    10^9-point sweep (benchmarks/profile_block.py): 3.6x faster to write than Zstd level 1 and smaller
    (0.15 vs 0.20 of the raw bytes), since shuffle groups the exponent bytes of the floats."""
    from zarr.codecs import BloscCodec

    return (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),)


def fingerprint_of(path: str) -> str | None:
    import zarr

    try:
        g = zarr.open_group(_store_arg(path), mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        return None
    fp = g.attrs.get("fingerprint")
    return str(fp) if fp is not None else None


def stored_chunks(path: str, plan: Plan) -> tuple[int, ...]:
    """The block layout (chunk length per dim) of the existing store at ``path`` for ``plan``'s sweep:
    the ``block_chunks`` group attribute, checked against the arrays' chunks and the ledger's length."""
    root = _group(path)
    attr = root.attrs.get("block_chunks")
    chunks = list(plan.chunks) if attr is None else [int(c) for c in attr]  # type: ignore[union-attr,arg-type]
    for name in plan.outputs:
        if name not in root:
            continue
        stored: tuple[int, ...] = root[name].chunks  # type: ignore[union-attr]
        for d, c in zip(plan.var_dims[name], stored, strict=True):
            if attr is None:
                chunks[plan.dims.index(d)] = int(c)
            elif chunks[plan.dims.index(d)] != int(c):
                raise StoreError(
                    f"{path}: array {name!r} is chunked {stored} (dims {plan.var_dims[name]}), not as "
                    f"its block layout {tuple(chunks)}; the store is damaged: rerun with --overwrite"
                )
    try:
        layout = plan.with_chunks(tuple(chunks))
    except ValueError:
        raise StoreError(
            f"{path}: block layout {tuple(chunks)} does not fit the sweep's grid {plan.shape}; "
            "rerun with --overwrite"
        ) from None
    if LEDGER in root and root[LEDGER].shape != (layout.n_blocks,):  # type: ignore[union-attr]
        raise StoreError(
            f"{path}: the ledger has {root[LEDGER].shape[0]} blocks but the block layout "  # type: ignore[union-attr]
            f"{tuple(chunks)} gives {layout.n_blocks}; the store is damaged: rerun with --overwrite"
        )
    return tuple(chunks)


def group_attrs(path: str) -> dict[str, Any]:
    """The attributes of the store's root group."""
    return dict(_group(path).attrs)


def stored_outputs(path: str, plan: Plan) -> tuple[str, ...]:
    """The outputs of ``plan`` that the store at ``path`` holds (a default sweep stored by a cusweep with
    fewer outputs holds fewer; the fingerprint does not count the default outputs)."""
    root = _group(path)
    return tuple(n for n in plan.outputs if n in root)


def _group(path: str) -> zarr.Group:
    import zarr

    return zarr.open_group(_store_arg(path), mode="r")


def template_complete(path: str) -> bool:
    """True when the store's template was written to its last step (the consolidated metadata, after the
    ledger); a run stopped while writing it leaves it incomplete, and the next run writes it again."""
    root = _group(path)
    return root.metadata.consolidated_metadata is not None and LEDGER in root and CHECKSUMS in root


def os_message(exc: OSError) -> str:
    """An OSError as a one-line user message, with what to do for a full disk."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"no space left on the device ({exc.strerror}); free some space (or use --store on a larger "
            "disk), then rerun the same command to resume"
        )
    return f"{exc.strerror or exc}{f' ({exc.filename})' if exc.filename else ''}"


def prepare(path: str, plan: Plan, *, overwrite: bool = False) -> bool:
    """Make ``path`` a store for ``plan``: write the template, or accept an existing store of the same
    sweep (resume). Returns True when the store was (re)created. A store of a different sweep is refused
    (SpecError, nothing touched) unless ``overwrite``."""
    if check_target(path, plan, overwrite=overwrite):
        remove_partials(path)
        return False
    try:
        clear(path)
        write_template(path, plan)
    except StoreError:
        raise
    except OSError as exc:
        raise StoreError(f"cannot create store {path}: {os_message(exc)}") from None
    return True


def remove_partials(path: str) -> int:
    """Delete the temporary files (``KEY.<uuid>.partial``) of chunk writes cut short by a killed run: zarr's
    LocalStore writes each chunk to one and renames it, so they never hold data. Called under the run lock,
    when resuming a local store. Returns how many were removed."""
    if not is_local(path):
        return 0
    n = 0
    for dirpath, _, files in os.walk(_local(path)):
        for f in files:
            if f.endswith(".partial"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(dirpath, f))
                    n += 1
    return n


def check_target(path: str, plan: Plan, *, overwrite: bool = False) -> bool:
    """Refuse (SpecError, nothing touched) a ``path`` that holds a different sweep unless ``overwrite``, and
    a ``path`` that holds anything but a cusweep store (a file, a directory of other files) always:
    ``--overwrite`` replaces cusweep stores only. True when ``path`` holds this sweep's complete template
    (resume); False when the template is still to be written (also after a run killed while writing it)."""
    not_a_store = SpecError(
        f"store: {path} exists and is not a cusweep store; choose another store path (cusweep run "
        "--overwrite replaces cusweep stores only, never other files)"
    )
    if exists(path):
        fp = fingerprint_of(path)
        if fp is None:
            if [k for k in _group(path).keys() if k != META_GROUP] and not _is_cusweep_group(path):
                raise not_a_store
            return False  # an empty group: a run was stopped before the template's attributes were written
        if overwrite:
            return False
        if fp == plan.fingerprint:
            return template_complete(path)
        raise SpecError(
            f"store: {path} holds a different sweep (fingerprint {fp[:12]} != "
            f"{plan.fingerprint[:12]}); use another store path, or overwrite it (cusweep run --overwrite)"
        )
    if is_local(path) and os.path.lexists(_local(path)):
        p = _local(path)
        if not os.path.isdir(p):
            raise not_a_store
        entries = os.listdir(p)
        # a directory with the ``_cusweep`` group is a cusweep store whose root ``zarr.json`` is not
        # (or not yet, or being re-) written: another run is creating its template, or was killed doing so
        if META_GROUP not in entries and entries:
            raise not_a_store
    return False


def _is_cusweep_group(path: str) -> bool:
    """A group with the ``_cusweep`` member: a cusweep store whose template was cut short."""
    return META_GROUP in _group(path).keys()


def clear(path: str) -> None:
    """Remove a store's contents but keep its ``_cusweep`` group (which holds the live run lock)."""
    if is_local(path):
        p = _local(path)
        if os.path.isfile(p):
            os.remove(p)
        if not os.path.isdir(p):
            return
        for entry in os.listdir(p):
            if entry == META_GROUP:
                continue
            full = os.path.join(p, entry)
            if os.path.isdir(full):
                shutil.rmtree(full)
            else:
                os.remove(full)
    else:
        import fsspec

        fs, root = fsspec.core.url_to_fs(path)
        if fs.exists(root):
            for entry in fs.ls(root, detail=False):
                if entry.rstrip("/").rsplit("/", 1)[-1] != META_GROUP:
                    fs.rm(entry, recursive=True)


def write_template(path: str, plan: Plan) -> None:
    """Write metadata, coordinates, attrs and the empty ledger (coordinator only, once).

    The nodes are those ``plan.to_dataset().to_zarr(path, compute=False, zarr_format=3)`` writes (a test
    compares them), created with zarr directly: importing xarray (with pandas and dask.array) would
    cost the coordinator about half a second on every run."""
    import zarr

    from .quantities import COORDS, attrs

    attributes = {**plan.group_attrs(), "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
    try:
        root = zarr.open_group(_store_arg(path), mode="a", zarr_format=3)
        root.attrs.update(attributes)
        for d in plan.dims:
            values = plan.coords[d]
            if d == "crystal":  # variable-length UTF-8, as xarray writes object strings
                values = np.asarray([str(v) for v in values], dtype=object)
                a = root.create_array(
                    d,
                    shape=values.shape,
                    dtype=str,
                    dimension_names=[d],
                    attributes=_with_fill(attrs(COORDS[d]), values.dtype),
                )
                a[...] = values
            else:
                root.create_array(
                    d,
                    data=values,
                    fill_value=np.nan,
                    dimension_names=[d],
                    attributes=_with_fill(attrs(COORDS[d]), values.dtype),
                )
        for name in plan.outputs:
            dtype = np.dtype(bool) if VARIABLES[name].kind == "bool" else np.dtype(plan.dtype)
            root.create_array(
                name,
                shape=plan.var_shape(name),
                chunks=plan.var_chunks(name),
                dtype=dtype,
                fill_value=False if dtype.kind == "b" else np.nan,
                compressors=compressors(),
                dimension_names=list(plan.var_dims[name]),
                attributes=_with_fill(plan.var_attrs(name), dtype),
            )
    except OSError as exc:
        raise StoreError(f"cannot create store {path}: {os_message(exc)}") from exc
    root = zarr.open_group(_store_arg(path), mode="r+")
    root.create_array(
        LEDGER,
        shape=(plan.n_blocks,),
        chunks=(1,),
        dtype=bool,
        fill_value=False,
        dimension_names=["block"],
        attributes={
            "long_name": "block completed",
            "units": "1",
            "symbol": "done",
            "source": "cusweep completion ledger (one element and chunk per block)",
        },
    )
    root.create_array(
        CHECKSUMS,
        shape=(plan.n_blocks,),
        chunks=(1,),
        dtype="uint64",
        fill_value=0,
        dimension_names=["block"],
        attributes={
            "long_name": "xxh3-64 digest of the block's chunks",
            "units": "1",
            "symbol": "xxh3",
            "source": "cusweep; verified by `cusweep status --verify`",
        },
    )
    _meta_group(path)
    # metadata never changes after the template: consolidate once, so plain xr.open_zarr(path) reads it
    # in one request and without a warning (zarr warns that v3 consolidation is not in the spec yet)
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Consolidated metadata is currently not part", category=UserWarning
        )
        zarr.consolidate_metadata(_store_arg(path), zarr_format=3)


def _with_fill(attributes: dict[str, str], dtype: np.dtype[Any]) -> dict[str, Any]:
    """xarray's ``_FillValue`` attribute of a float array (base64 of a float64 NaN, whatever the float
    dtype, as xarray writes it), so that ``xr.open_zarr`` masks NaN as for a store xarray wrote itself."""
    if dtype.kind != "f":
        return dict(attributes)
    return {**attributes, "_FillValue": base64.standard_b64encode(np.float64(np.nan).tobytes()).decode()}


def done_mask(path: str) -> np.ndarray:
    import zarr

    root = zarr.open_group(_store_arg(path), mode="r")
    if LEDGER not in root:
        raise StoreError(
            f"{path}: no completion ledger '{LEDGER}' (a run was stopped while creating the "
            "store, or this is not a cusweep store); rerun `cusweep run` with the same sweep"
        )
    values, _ = _read_cells(root[LEDGER])
    return np.asarray(values, dtype=bool)


def _read_cells(array: Any) -> tuple[np.ndarray, np.ndarray]:
    """A one-chunk-per-cell bookkeeping array (``done``, ``block_checksum``) and a mask of the cells that
    could be read: a garbled or truncated chunk fails to decode, and with one read of the whole array one
    damaged cell would make status, verify, run and repair all fail. Such cells read as the fill value
    (0: not done, no checksum), so the blocks are verified or computed again."""
    try:
        return np.asarray(array[...]), np.ones(array.shape, dtype=bool)
    except Exception:  # any decoding failure (the codec's own error types)
        values = np.zeros(array.shape, dtype=array.dtype)
        ok = np.ones(array.shape, dtype=bool)
        for i in range(array.shape[0]):
            try:
                values[i] = array[i]
            except Exception:
                ok[i] = False
        return values, ok


def damaged_cells(path: str) -> dict[str, list[int]]:
    """Cells of the ledger and of the checksum array whose chunk cannot be read, by array name."""
    import zarr

    root = zarr.open_group(_store_arg(path), mode="r")
    out = {}
    for name in (LEDGER, CHECKSUMS):
        if name in root:
            _, ok = _read_cells(root[name])
            out[name] = [int(i) for i in np.flatnonzero(~ok)]
    return out


def mark_done(path: str, plan: Plan, block_id: int, checksum: int) -> None:
    """Record a block as complete (coordinator only: one writer for the ledger)."""
    arrays = _arrays_cached(path, (LEDGER, CHECKSUMS), plan.layout_token)
    try:
        arrays[CHECKSUMS][block_id] = np.uint64(checksum)
        arrays[LEDGER][block_id] = True
    except OSError as exc:
        raise StoreError(f"recording block id {block_id} as done in {path}: {os_message(exc)}") from None


def clear_done(path: str, plan: Plan, block_ids: list[int], *, checksums: bool = False) -> None:
    """Mark blocks as not done (and, with ``checksums``, reset their checksum cells to 0): each cell is a
    whole chunk, so this also replaces a damaged one."""
    arrays = _arrays_cached(path, (LEDGER, CHECKSUMS), plan.layout_token)
    for b in block_ids:
        arrays[LEDGER][b] = False
        if checksums:
            arrays[CHECKSUMS][b] = np.uint64(0)


# --------------------------------------------------------------------------------------------------
# integrity of the coordinates and the metadata (checked by verify)

#: attribute of the ``_cusweep`` group holding the coordinates' digests and every array's metadata as
#: written with the template
INTEGRITY = "integrity"


def _coord_digest(values: np.ndarray) -> str:
    a = np.asarray(values)
    if a.dtype.kind in "USOT":  # crystal names
        return f"{checksum([np.frombuffer(chr(0).join(map(str, a.tolist())).encode(), np.uint8)]):016x}"
    return f"{checksum([np.ascontiguousarray(a, dtype=np.float64)]):016x}"


def _metadata(path: str, *, consolidated: bool) -> dict[str, Any]:
    """Every top-level array's metadata (attributes, shape, chunks, codecs, dims, fill value) as JSON-able
    dicts, from the arrays' own ``zarr.json`` or from the consolidated metadata."""
    import json

    import zarr

    root = zarr.open_group(_store_arg(path), mode="r", use_consolidated=consolidated)
    return {
        str(n): json.loads(json.dumps(a.metadata.to_dict(), default=str, sort_keys=True))
        for n, a in root.arrays()
    }


def record_integrity(path: str, plan: Plan) -> None:
    """Record, in the ``_cusweep`` group, a digest of each coordinate array and the metadata of every
    array, as the template wrote them (coordinator only, under the run lock, after the template)."""
    import zarr

    root = zarr.open_group(_store_arg(path), mode="r", use_consolidated=False)
    record = {
        "coords": {d: _coord_digest(np.asarray(root[d][...])) for d in plan.dims},  # type: ignore[index]
        "metadata": _metadata(path, consolidated=False),
    }
    meta = zarr.open_group(_meta_path(path), mode="r+", use_consolidated=False)
    meta.attrs[INTEGRITY] = record


def has_integrity(path: str) -> bool:
    """True when the store holds the record of ``record_integrity``; StoreError (one line) when the group
    that holds it cannot be read."""
    import zarr

    try:
        meta = zarr.open_group(_meta_path(path), mode="r", use_consolidated=False)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        return False
    except Exception as exc:  # a garbled _cusweep/zarr.json
        raise StoreError(
            f"{path}: the bookkeeping group {META_GROUP} cannot be read ({type(exc).__name__}), and with it "
            "the record of the coordinates and metadata; `cusweep run SWEEP.toml --store STORE --repair` "
            "writes it again"
        ) from None
    return INTEGRITY in meta.attrs


def check_integrity(path: str, plan: Plan) -> list[str]:
    """Coordinates whose values differ from those recorded with the template (repairable: the stored sweep
    gives them); StoreError (one line) for metadata that differs in an array's ``zarr.json`` or in the
    consolidated metadata (attributes deleted or altered, an array gone). A store without a record (made by
    an older cusweep) passes."""
    import zarr

    if not has_integrity(path):
        return []
    record: Any = zarr.open_group(_meta_path(path), mode="r", use_consolidated=False).attrs[INTEGRITY]
    for consolidated, where in ((False, "its zarr.json"), (True, "the store's consolidated metadata")):
        try:
            now = _metadata(path, consolidated=consolidated)
        except Exception as exc:  # an unreadable zarr.json
            raise StoreError(
                f"{path}: the metadata cannot be read ({type(exc).__name__}); the store is damaged: rerun "
                "`cusweep run SWEEP.toml --store STORE --overwrite`"
            ) from None
        for name, meta in record["metadata"].items():
            if now.get(name) != meta:
                what = "is missing" if name not in now else "differs from the one written with the template"
                raise StoreError(
                    f"{path}: the metadata of {name!r} {what} (in {where}); the store is damaged: rerun "
                    "`cusweep run SWEEP.toml --store STORE --overwrite`"
                )
    root = zarr.open_group(_store_arg(path), mode="r", use_consolidated=False)
    return [d for d, digest in record["coords"].items() if _coord_digest(np.asarray(root[d][...])) != digest]  # type: ignore[index]


def rewrite_coords(path: str, plan: Plan, dims: list[str]) -> None:
    """Write the coordinate arrays ``dims`` again from ``plan`` (the stored sweep's), as the template did."""
    import zarr

    root = zarr.open_group(_store_arg(path), mode="r+", use_consolidated=False)
    for d in dims:
        values = plan.coords[d]
        if d == "crystal":
            values = np.asarray([str(v) for v in values], dtype=object)
        root[d][...] = values  # type: ignore[index]


def _meta_path(path: str) -> str:
    return os.path.join(_local(path), META_GROUP) if is_local(path) else path.rstrip("/") + "/" + META_GROUP


@functools.lru_cache(maxsize=16)
def _arrays_cached(path: str, names: tuple[str, ...], token: str) -> dict[str, zarr.Array]:
    import zarr

    root = zarr.open_group(_store_arg(path), mode="r+")
    # write_empty_chunks: every chunk is written, also an all-NaN one (the ledger, not chunk presence, says
    # what is computed); it spares zarr a full comparison pass per chunk (~9% of a run, benchmarks/)
    return {n: root[n].with_config({"write_empty_chunks": True}) for n in names}  # type: ignore[union-attr]


def checksum(arrays: Iterable[np.ndarray]) -> int:
    """xxh3-64 digest of the raw bytes of ``arrays``, in order (8x faster than zlib.crc32, measured in
    benchmarks/profile_block.py; a checksum of the data, not a cryptographic hash)."""
    import xxhash

    h = xxhash.xxh3_64()
    for a in arrays:
        h.update(np.ascontiguousarray(a).view(np.uint8).reshape(-1))  # type: ignore[arg-type]
    return int(h.intdigest())


class BlockWriter:
    """Writes one block's owned chunks (whole Zarr chunks only), one output at a time, and keeps their
    checksum (``checksum`` of the arrays in the order written): an output can be freed once written."""

    def __init__(self, path: str, plan: Plan, index: tuple[int, ...], names: tuple[str, ...]):
        import xxhash

        self.path, self.plan, self.index = path, plan, index
        try:
            self._arrays = _arrays_cached(path, names, plan.layout_token)
        except OSError as exc:  # not the connection's OSError: say what the worker could not open
            raise StoreError(f"opening {path} to write block {index}: {os_message(exc)}") from None
        self._hash = xxhash.xxh3_64()

    def write(self, name: str, value: np.ndarray) -> None:
        data = value if value.dtype == bool else value.astype(self.plan.dtype, copy=False)
        data = np.ascontiguousarray(data)
        region = self.plan.var_block_slices(name, self.index)
        try:
            self._arrays[name][region] = data.reshape(value.shape)  # 0-d stays 0-d
        except OSError as exc:
            where = f"block {self.index} of {self.path} ({name})"
            raise StoreError(f"writing {where}: {os_message(exc)}") from exc
        self._hash.update(data.view(np.uint8).reshape(-1))  # type: ignore[arg-type]

    def checksum(self) -> int:
        return int(self._hash.intdigest())


def write_block(path: str, plan: Plan, index: tuple[int, ...], values: dict[str, np.ndarray]) -> int:
    """Write a block's owned chunks (whole Zarr chunks only) and return their checksum (``checksum``)."""
    writer = BlockWriter(path, plan, index, tuple(values))
    for name, value in values.items():
        writer.write(name, value)
    return writer.checksum()


def read_block_checksum(path: str, plan: Plan, index: tuple[int, ...]) -> int:
    """Checksum of the block's chunks as stored now (for verify)."""
    import zarr

    root = zarr.open_group(_store_arg(path), mode="r")
    stored = []
    for name in plan.owned_outputs(index):
        data = np.asarray(root[name][plan.var_block_slices(name, index)])  # type: ignore[index]
        stored.append(data if data.dtype == bool else data.astype(plan.dtype, copy=False))
    return checksum(stored)


def missing_chunks(path: str, plan: Plan) -> list[int]:
    """Done blocks of a local store with a chunk file missing (every chunk is written, also an all-NaN
    one, so a missing file means a deleted file). Object stores: not checked here (``[]``)."""
    if not is_local(path):
        return []
    root = _local(path)
    done = np.flatnonzero(done_mask(path))
    if not done.size:
        return []
    present = {name: _chunk_keys(os.path.join(root, name, "c")) for name in plan.outputs}
    bad = []
    for b in map(int, done):
        index = plan.block_index(b)
        for name in plan.owned_outputs(index):
            key = tuple(str(index[plan.dims.index(d)]) for d in plan.var_dims[name])
            if key not in present[name]:
                bad.append(b)
                break
    return bad


def _chunk_keys(top: str) -> set[tuple[str, ...]]:
    """The chunk keys (``c/0/3/1`` -> ``("0", "3", "1")``) present under an array's ``c`` directory, by one
    directory walk (a stat per chunk would cost seconds on a store of 10^5 chunks); a 0-d array's only chunk
    is the file ``c`` itself, key ``()``."""
    if os.path.isfile(top):
        return {()}
    keys: set[tuple[str, ...]] = set()
    for dirpath, _, files in os.walk(top):
        rel = os.path.relpath(dirpath, top)
        head = () if rel == "." else tuple(rel.split(os.sep))
        keys.update((*head, f) for f in files if not f.endswith(".partial"))
    return keys


def stored_checksums(path: str) -> np.ndarray:
    import zarr

    values, _ = _read_cells(zarr.open_group(_store_arg(path), mode="r")[CHECKSUMS])
    return np.asarray(values, dtype=np.uint64)  # an unreadable cell reads 0, which no block matches


#: the run lock inside the ``_cusweep`` group: a Zarr group of its own (so Zarr lists no stray object), whose
#: ``zarr.json`` is created once with O_CREAT and never replaced (zarr rewrites a node's metadata by
#: renaming a new file over it, and two runs could then lock two different files)
LOCK_GROUP = "run_lock"
#: where flock is unsupported: the holder, a Zarr group created with mkdir (atomic) naming the process
HOLDER_GROUP = "run_lock_holder"
#: errno values of a file system without flock (some network and FUSE file systems)
_NO_FLOCK = (errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK, errno.EINVAL)
_GROUP_JSON = b'{"zarr_format": 3, "node_type": "group", "attributes": {}}'


#: the note given (once per lock) where the file system has no flock
NO_FLOCK_NOTE = (
    "note: {path}: the file system does not support flock ({error}); locking with an exclusive "
    "mkdir holder instead (_cusweep/run_lock_holder, taken over when its process is gone)"
)


@contextlib.contextmanager
def lock(path: str, note: Callable[[str], object] | None = None) -> Iterator[None]:
    """Hold the store's run lock for the duration; a second holder is refused at once (StoreError).

    Local stores: fcntl.flock on ``_cusweep/run_lock/zarr.json``, a file opened with O_CREAT and never
    replaced, so every run locks the same inode; the kernel releases it when the process dies, so a killed
    run never leaves a stale lock. Where the file system has no flock, the group ``_cusweep/run_lock_holder``
    made with mkdir (atomic) names the holder, and is taken over when that process is gone. The
    ``_cusweep`` Zarr group is completed under the lock (two runs creating it at once made zarr raise
    ContainsGroupError). Remote (fsspec) stores: a lease, see ``_lease``. ``note`` receives a one-line
    note for people when the fallback is used.
    """
    if not is_local(path):
        with _claim(path) if path.startswith(("s3://", "s3a://")) else _lease(path):
            yield
        return
    meta = os.path.join(_local(path), META_GROUP)
    lock_file = os.path.join(meta, LOCK_GROUP, "zarr.json")
    try:
        os.makedirs(os.path.dirname(lock_file), exist_ok=True)
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot create or lock store {path}: {os_message(exc)}; check --store") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = True
        except BlockingIOError:
            raise _locked(path, lock_file) from None
        except OSError as exc:
            if exc.errno not in _NO_FLOCK:
                raise StoreError(f"cannot lock store {path}: {os_message(exc)}") from None
            held = False
            if note is not None:
                note(NO_FLOCK_NOTE.format(path=path, error=errno.errorcode.get(exc.errno or 0, exc.errno)))
        with contextlib.nullcontext() if held else _holder_lock(path, os.path.join(meta, HOLDER_GROUP)):
            if os.fstat(fd).st_size == 0:  # a valid (empty) Zarr group, written once, in place
                os.pwrite(fd, _GROUP_JSON, 0)
            try:
                _meta_group(path)
            except Exception:  # a damaged _cusweep/zarr.json (bookkeeping only): written again, empty
                with open(os.path.join(meta, "zarr.json"), "wb") as fh:
                    fh.write(_GROUP_JSON)
                _meta_group(path)
            yield
    finally:
        os.close(fd)


class StoreLocked(StoreError):
    """The store's run lock is held by another run."""


def _locked(path: str, where: str) -> StoreError:
    return StoreLocked(
        f"{path} is being written by another cusweep run (it holds the store's lock, {where}); wait for it "
        "to finish (or stop it), then rerun the same command to resume"
    )


@contextlib.contextmanager
def _holder_lock(path: str, holder: str) -> Iterator[None]:
    """The lock where flock is unsupported: ``os.mkdir(holder)`` (atomic, also on NFS), then a
    ``zarr.json`` in it whose attributes name this process (host, pid, start time); a holder left by a
    process of this host that no longer runs is taken over once. Removed on exit."""
    import json

    me = {"host": os.uname().nodename, "pid": os.getpid(), "started": _process_started(os.getpid())}
    for attempt in range(2):
        try:
            os.mkdir(holder)
        except FileExistsError:
            try:
                with open(os.path.join(holder, "zarr.json"), encoding="utf-8") as fh:
                    current = json.load(fh).get("attributes", {})
            except (OSError, ValueError, AttributeError):
                current = {}
            if attempt == 0 and isinstance(current, dict) and _lease_holder_gone(current):
                shutil.rmtree(holder, ignore_errors=True)
                continue
            raise _locked(path, holder) from None
        except OSError as exc:
            raise StoreError(
                f"cannot lock store {path}: its file system supports neither flock nor an exclusive "
                f"mkdir ({os_message(exc)}); put the store on a local disk"
            ) from None
        with open(os.path.join(holder, "zarr.json"), "w", encoding="utf-8") as fh:
            json.dump({"zarr_format": 3, "node_type": "group", "attributes": me}, fh)
        break
    try:
        yield
    finally:
        shutil.rmtree(holder, ignore_errors=True)


@contextlib.contextmanager
def _lease(path: str, ttl: float = 120.0, settle: float = 1.0) -> Iterator[None]:
    """Advisory lock for object stores: a Zarr group ``_cusweep/lease`` whose attributes name the owner
    and an expiry, refreshed while the run lives. A second run is refused while the lease is live; a
    killed run's lease expires after ``ttl`` seconds and is then taken over, at once when the run that
    held it was on this machine and its process is gone."""
    import threading
    import time

    import zarr

    url = path.rstrip("/") + f"/{META_GROUP}/lease"
    try:
        _meta_group(path)
    except Exception:  # another run created the group at the same moment (zarr: ContainsGroupError)
        time.sleep(0.2)
        _meta_group(path)
    try:
        current = dict(zarr.open_group(url, mode="r").attrs)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError):
        current = {}
    expires = float(current.get("expires", 0) or 0)  # type: ignore[arg-type]

    def refuse(attrs: dict[str, Any]) -> StoreError:
        until = _dt.datetime.fromtimestamp(float(attrs.get("expires", 0) or 0)).isoformat()  # type: ignore[arg-type]
        return StoreLocked(
            f"{path} is being written by {attrs.get('holder', 'another cusweep run')} (lease "
            f"until {until}); wait for it to finish, then rerun the same command to resume"
        )

    if expires > time.time() and not _lease_holder_gone(current):
        raise refuse(current)
    me = _holder_record()
    stop = threading.Event()

    def write() -> None:
        zarr.open_group(url, mode="w", attributes={**me, "expires": time.time() + ttl})

    write()
    # read back after a pause: of runs that found the lease free at about the same time, the one whose
    # write landed last proceeds (read at once, the first writer could read back its own lease before the
    # second wrote: two holders)
    time.sleep(settle)
    now = dict(zarr.open_group(url, mode="r").attrs)
    if now.get("owner") != me["owner"]:
        raise refuse(now)
    claims, _ = _shard_claims(path)  # shards hold the store (see shared_claim): give the lease up
    if claims:
        with contextlib.suppress(Exception):
            zarr.open_group(url, mode="w", attributes={**me, "expires": 0})
        raise _refuse_shards(path, claims)

    def refresh() -> None:
        while not stop.wait(ttl / 4):
            with contextlib.suppress(Exception):
                write()

    t = threading.Thread(target=refresh, daemon=True, name="cusweep-lease")
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(timeout=5)
        with contextlib.suppress(Exception):
            zarr.open_group(url, mode="w", attributes={**me, "expires": 0})


#: the conditional-write lease of S3 stores: ``_cusweep/lease_claims/gNNNNNNNNNNNN``, one Zarr group per
#: generation, each created only if absent (``If-None-Match: *``); the newest generation is the lease
CLAIMS = "lease_claims"
#: the shared claims of shards on object stores: ``_cusweep/shard_claims/<id>``, one Zarr group per shard
#: run (owner, shard and expiry in its attributes), refreshed while the shard runs, removed when it ends
SHARD_CLAIMS = "shard_claims"
_EMPTY_GROUP = b'{"zarr_format": 3, "node_type": "group", "attributes": {}}'


def _fs(path: str, sub: str) -> tuple[Any, str]:
    """(fsspec file system, root) of ``_cusweep/<sub>`` of an object store."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(path.rstrip("/") + f"/{META_GROUP}/{sub}")
    return fs, root


def _attrs(fs: Any, key: str) -> dict[str, Any]:
    import json

    try:
        attrs = json.loads(fs.cat(key)).get("attributes", {})
    except (FileNotFoundError, ValueError, AttributeError):
        return {}
    return attrs if isinstance(attrs, dict) else {}


def _live(attrs: dict[str, Any]) -> bool:
    """A lease or claim that holds: not expired, and not taken by a process of this host that is gone."""
    import time

    return float(attrs.get("expires", 0) or 0) > time.time() and not _lease_holder_gone(attrs)


def _generations(fs: Any, root: str) -> list[int]:
    try:
        names = [e.rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(root, detail=False, refresh=True)]
    except FileNotFoundError:
        names = []
    return sorted(int(n[1:]) for n in names if n.startswith("g") and n[1:].isdigit())


def _exclusive_holder(path: str) -> dict[str, Any] | None:
    """The attributes of the object store's exclusive lease (a plain run's) when it holds, else None."""
    if path.startswith(("s3://", "s3a://")):
        fs, root = _fs(path, CLAIMS)
        gens = _generations(fs, root)
        current = _attrs(fs, f"{root}/g{gens[-1]:012d}/zarr.json") if gens else {}
    else:
        fs, key = _fs(path, "lease/zarr.json")
        current = _attrs(fs, key)
    return current if current and _live(current) else None


def _shard_claims(path: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(attributes of the live shard claims, keys of the stale ones: expired, or of a process of this host
    that is gone) of an object store."""
    fs, root = _fs(path, SHARD_CLAIMS)
    try:
        entries = [e.rstrip("/") for e in fs.ls(root, detail=False, refresh=True)]
    except FileNotFoundError:
        entries = []
    live, stale = [], []
    for entry in entries:
        if entry.endswith("zarr.json"):  # the group's own metadata
            continue
        attrs = _attrs(fs, f"{entry}/zarr.json")
        if attrs and _live(attrs):
            live.append(attrs)
        elif attrs or not fs.exists(f"{entry}/zarr.json"):
            stale.append(entry)
    return live, stale


def _remove(fs: Any, keys: list[str]) -> None:
    """Remove claim groups (a claim's ``zarr.json`` and its prefix); best effort."""
    for key in keys:
        with contextlib.suppress(Exception):
            fs.rm(key, recursive=True)


def _refuse_shards(path: str, claims: list[dict[str, Any]]) -> StoreError:
    shards = sorted({str(c.get("shard", "?")) for c in claims})
    until = _dt.datetime.fromtimestamp(max(float(c.get("expires", 0) or 0) for c in claims)).isoformat()
    return StoreLocked(
        f"{path} is being computed in shards ({len(claims)} shard run(s): {', '.join(shards[:8])}; "
        f"{claims[0].get('holder', 'another cusweep run')} and others, claims until {until}); a plain run "
        "holds the store alone: wait for the shards to finish, then rerun the same command"
    )


@contextlib.contextmanager
def _claim(path: str, ttl: float = 120.0) -> Iterator[None]:
    """The run lock of S3 stores, by conditional writes: the lease is the newest generation ``g`` of
    ``_cusweep/lease_claims/g...`` (owner and expiry in its attributes). A run takes the lock by creating
    generation ``g + 1`` with ``If-None-Match: *`` when ``g`` is absent, expired, or held by a process of
    this host that is gone; of runs that try at once exactly one create succeeds (the server decides), the
    others are refused. The holder rewrites its own generation's expiry while it runs (nobody else writes
    that object), and sets it to 0 on exit.

    Shards (``shared_claim``) hold shared claims: having created its generation, the run looks for live
    shard claims and, finding one, gives its generation up (expiry 0) and is refused; a shard writes its
    claim first and then looks at the lease, so of a shard and a run starting at once at least one sees the
    other. The run that takes the lock removes what killed runs left: older generations and stale shard
    claims."""
    import json
    import threading
    import time

    fs, root = _fs(path, CLAIMS)
    gens = _generations(fs, root)
    current = _attrs(fs, f"{root}/g{gens[-1]:012d}/zarr.json") if gens else {}

    def refuse(attrs: dict[str, Any]) -> StoreError:
        until = _dt.datetime.fromtimestamp(float(attrs.get("expires", 0) or 0)).isoformat()
        return StoreLocked(
            f"{path} is being written by {attrs.get('holder', 'another cusweep run')} (lease "
            f"until {until}); wait for it to finish, then rerun the same command to resume"
        )

    if gens and _live(current):
        raise refuse(current)
    gen = (gens[-1] + 1) if gens else 1
    me = _holder_record(generation=gen)
    key = f"{root}/g{gen:012d}/zarr.json"

    def body(expires: float) -> bytes:
        return json.dumps({"zarr_format": 3, "node_type": "group",
                           "attributes": {**me, "expires": expires}}).encode()

    try:
        fs.pipe_file(key, body(time.time() + ttl), mode="create")
    except FileExistsError:  # another run created this generation first: it holds the lease
        raise refuse(_attrs(fs, key)) from None
    later = [g for g in _generations(fs, root) if g > gen]
    if later:  # a generation number freed by the clean-up below, created from a stale listing: superseded
        _remove(fs, [key.rsplit("/", 1)[0]])
        raise refuse(_attrs(fs, f"{root}/g{later[-1]:012d}/zarr.json"))
    claims, stale = _shard_claims(path)
    if claims:
        with contextlib.suppress(Exception):
            fs.pipe_file(key, body(0.0))
        raise _refuse_shards(path, claims)
    # this run holds the lock: remove what killed (or finished) runs left behind
    _remove(fs, [f"{root}/g{g:012d}" for g in gens if g < gen])
    _remove(_fs(path, SHARD_CLAIMS)[0], stale)
    if not fs.exists(f"{root}/zarr.json"):
        with contextlib.suppress(Exception):
            fs.pipe_file(f"{root}/zarr.json", _EMPTY_GROUP)
    stop = threading.Event()

    def refresh() -> None:
        while not stop.wait(ttl / 4):
            with contextlib.suppress(Exception):
                fs.pipe_file(key, body(time.time() + ttl))

    t = threading.Thread(target=refresh, daemon=True, name="cusweep-lease")
    t.start()
    try:
        with contextlib.suppress(Exception):
            _meta_group(path)
        yield
    finally:
        stop.set()
        t.join(timeout=5)
        with contextlib.suppress(Exception):
            fs.pipe_file(key, body(0.0))


@contextlib.contextmanager
def shared_claim(path: str, shard: str, ttl: float = 120.0) -> Iterator[bool]:
    """Hold a shard's shared claim on an object store for the duration: yields True when held, False when
    a plain run holds the exclusive lease (the caller waits and tries again). The claim is a Zarr group
    ``_cusweep/shard_claims/<id>`` of its own (shards never write the same object) naming this process,
    the shard and an expiry renewed while it runs; removed on exit, and a killed shard's claim expires
    (at once for a process of this host that is gone). Written before the lease is looked at, so a plain
    run starting at the same moment is refused, or this shard is (``_claim``)."""
    import json
    import threading
    import time

    if _exclusive_holder(path) is not None:
        yield False
        return
    fs, root = _fs(path, SHARD_CLAIMS)
    me = _holder_record(shard=shard)
    prefix = f"{root}/{me['owner']}"

    def write(expires: float) -> None:
        fs.pipe_file(f"{prefix}/zarr.json", json.dumps(
            {"zarr_format": 3, "node_type": "group", "attributes": {**me, "expires": expires}}).encode())

    try:
        if not fs.exists(f"{root}/zarr.json"):
            fs.pipe_file(f"{root}/zarr.json", _EMPTY_GROUP)
        write(time.time() + ttl)
    except OSError as exc:
        raise StoreError(f"cannot claim store {path} for shard {shard}: {os_message(exc)}") from None
    stop = threading.Event()
    t: threading.Thread | None = None
    try:
        if _exclusive_holder(path) is not None:  # a plain run took the lease meanwhile: it wins
            yield False
            return

        def refresh() -> None:
            while not stop.wait(ttl / 4):
                with contextlib.suppress(Exception):
                    write(time.time() + ttl)

        t = threading.Thread(target=refresh, daemon=True, name="cusweep-shard-claim")
        t.start()
        yield True
    finally:
        stop.set()
        if t is not None:
            t.join(timeout=5)
        _remove(fs, [prefix])


def _holder_record(**extra: Any) -> dict[str, Any]:
    """Who holds a lease, lock generation or shard claim: a fresh owner id, this process and host, the
    process's start time (to tell a reused pid), and ``extra``."""
    import uuid

    pid = os.getpid()
    host = os.uname().nodename
    return {"owner": uuid.uuid4().hex, "holder": f"pid {pid} on {host}", "host": host, "pid": pid,
            "started": _process_started(pid), **extra}


def _process_started(pid: int) -> float | None:
    """Start time of a process (to tell a live lease holder from a new process that reuses its pid)."""
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:  # no such process, or no psutil (a dependency of distributed)
        return None


def _lease_holder_gone(attrs: dict[str, Any]) -> bool:
    """True when a lease was taken by a process on this machine that no longer runs (a killed run)."""
    pid = attrs.get("pid")
    if attrs.get("host") != os.uname().nodename or not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    started = attrs.get("started")
    now = _process_started(pid)
    return isinstance(started, float) and now is not None and abs(now - started) > 1.0  # pid reused


def _meta_group(path: str) -> None:
    """Create the ``_cusweep`` Zarr group (so Zarr and xarray see a valid member, not a stray object)."""
    import zarr

    if is_local(path):
        os.makedirs(os.path.join(_local(path), META_GROUP), exist_ok=True)
        zarr.open_group(os.path.join(_local(path), META_GROUP), mode="a", zarr_format=3)
    else:
        zarr.open_group(path + "/" + META_GROUP, mode="a", zarr_format=3)


def open_store(path: str) -> xr.Dataset:
    """Open a store lazily as an xarray.Dataset of the sweep's coordinates and variables."""
    import xarray as xr

    if not exists(path):
        raise NotAStoreError(
            f"STORE: {path} is not a cusweep store (no Zarr group there); "
            "run `cusweep run SWEEP.toml --store PATH` first"
        )
    if _is_cusweep_group(path) and not template_complete(path):  # read, it would give NaN as if computed
        raise StoreError(
            f"{path}: the store's template was cut short (a run stopped while creating it), so it holds no "
            f"data yet; rerun `cusweep run SWEEP.toml --store {path}` to create it"
        )
    try:
        ds = xr.open_zarr(_store_arg(path), consolidated=True, zarr_format=3)
    except (KeyError, FileNotFoundError, ValueError):
        ds = xr.open_zarr(_store_arg(path), consolidated=False, zarr_format=3)
    if is_local(path):  # the consolidated metadata still lists an array whose directory was deleted
        root = _local(path)
        gone = [n for n in ds.variables if not os.path.exists(os.path.join(root, str(n), "zarr.json"))]
        if gone:
            raise StoreError(
                f"{path}: the array(s) {', '.join(map(str, gone))} are missing (deleted from the store); the "
                "store is damaged: rerun `cusweep run SWEEP.toml --store STORE --overwrite`"
            )
    altered = coords_altered(path, {str(d): ds[d].values for d in ds.dims if d in ds.coords})
    if altered:  # a query would select the wrong points, silently
        raise StoreError(
            f"{path}: the coordinate {altered[0]!r} differs from the one written with the template; "
            "`cusweep run SWEEP.toml --store STORE --repair` rewrites the coordinates from the stored sweep"
        )
    return ds.drop_vars([n for n in BOOKKEEPING if n in ds.variables])


def coords_altered(path: str, values: dict[str, Any]) -> list[str]:
    """Dims whose coordinate ``values`` (as a reader loaded them) differ from the digests recorded with the
    template; ``[]`` when the store has no (readable) record."""
    import zarr

    try:
        meta = zarr.open_group(_meta_path(path), mode="r", use_consolidated=False)
        record: Any = meta.attrs.get(INTEGRITY)
    except Exception:  # no record, or a damaged one (verify reports that): nothing to compare with
        return []
    if not isinstance(record, dict) or not isinstance(record.get("coords"), dict):
        return []
    return [d for d, v in values.items() if d in record["coords"] and _coord_digest(v) != record["coords"][d]]

