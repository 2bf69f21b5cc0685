"""``cusweep query STORE EXPR``: count, list or rank the grid points where an expression holds.

Tables are in display units (``--si``: store units), the unit in each column header. CSV and JSON are in
store units (CSV headers say which; JSON values as in the store schema), coordinates to 15 significant
digits (the grid values without linspace's last-bit noise), variables exact. Rows are streamed: ``--limit 0``
lists every matching point with bounded memory."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..errors import QueryError
from ._common import out, say, warn_incomplete

NAME = "query"
HELP = "select grid points by an expression"


def add_arguments(q: argparse.ArgumentParser) -> None:
    q.description = (
        "Expressions: comparisons, and/or/not, parentheses, numbers with units (energy == 13.6 GeV, "
        "period < 20 um), variable and coordinate names. Parsed, never evaluated as Python; evaluated "
        "chunk by chunk. Tables are in display units (um, angstrom, GeV, keV; --si for store units); CSV "
        "and JSON in store units (m, eV). See docs/cli.md and docs/store.md."
    )
    q.add_argument("store", metavar="STORE", help="the store's path or URL")
    q.add_argument(
        "expr",
        metavar="EXPR",
        help="the condition, e.g. \"n_coh > 1e15 and feasible and energy == 13.6 GeV\"; labels in quotes: "
        "\"crystal == 'si-110'\"",
    )
    q.add_argument("--count", action="store_true", help="print only the number of matching points")
    q.add_argument("--top", type=int, metavar="K", help="the K best matching points (with --by)")
    q.add_argument("--by", metavar="VAR", help="variable to rank by (descending unless --asc)")
    q.add_argument("--asc", action="store_true", help="rank ascending")
    q.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="table (default, display units), csv (store units, units in the header), or json: a list of "
        "objects with every dim and the named variables (store units)",
    )
    q.add_argument("--vars", metavar="V1,V2", help="extra columns")
    q.add_argument(
        "--limit",
        type=int,
        default=1000,
        metavar="N",
        help="at most N rows without --top (default 1000; 0 = all, streamed)",
    )
    q.add_argument("--si", action="store_true", help="table in store units (m, eV) instead of display units")


def main(args: argparse.Namespace) -> int:
    from ..query import dim_order, matches_nothing, parse, units_of
    from ..stored import StoredSweep
    from ..top import columns_for, no_points, rank_variable, values_at

    parse(args.expr)  # syntax first: a malformed expression never touches the store
    if args.top is not None and not args.by:
        raise QueryError("query: --top needs --by VAR (the variable to rank by), e.g. --top 10 --by n_coh")
    if args.asc and not args.by:
        raise QueryError("query: --asc ranks by --by VAR; give --by too, e.g. --top 10 --by n_coh --asc")
    if args.limit is None or args.limit < 0:
        raise QueryError(f"query: --limit {args.limit}: give 0 (all) or a positive number of rows")
    if args.top is not None and args.top < 1:
        raise QueryError(f"query: --top {args.top}: give a positive number of points")
    extra = [v.strip() for v in (args.vars or "").split(",") if v.strip()]
    # names, units and the coordinate-only terms first, on the store's metadata and coordinates alone:
    # a query no grid value can match answers without opening the dataset (nor importing Dask)
    sweep = StoredSweep(args.store)
    skeleton: Any = sweep.skeleton  # (answers the Dataset questions of names, units and coordinates)
    columns = columns_for(skeleton, args.expr, args.by, extra, by_what="--by variable",
                          extra_what="--vars variable")
    if args.by:
        rank_variable(skeleton, args.by)
    empty = matches_nothing(skeleton, args.expr)
    if args.count:  # block by block from the metadata: the dataset is not opened
        warn_incomplete(sweep, args.store)
        out(str(0 if empty else sweep.block_count(args.expr, processes=_big(skeleton))))
        return 0
    # the skeleton answers names, units and dtypes; every path reads blocks with zarr (no xarray dataset)
    ds: Any = skeleton
    warn_incomplete(sweep, args.store)
    units = {c: units_of(ds, c) for c in columns}
    coords = set(dim_order(ds))
    more = False
    if empty:
        batches: Iterable[dict[str, np.ndarray]] = [values_at(ds, no_points(ds), columns)]
    elif args.by:
        k = args.top if args.top is not None else (args.limit or math.prod(int(n) for n in ds.sizes.values()))
        top = sweep.block_top(args.expr, args.by, k, ascending=args.asc, processes=_big(skeleton))
        batches = [sweep.values_at(top, columns)]
    elif args.limit:
        points, more = sweep.list_points(args.expr, args.limit)
        batches = [sweep.values_at(points, columns)]
    else:
        batches = (sweep.values_at(p, columns) for p in sweep.iter_points(args.expr))
    n = _write(batches, columns, units, coords, args.format, args.si)
    if n == 0 and args.format == "table":
        say("(no matching grid points)")
    if args.by and not empty and (args.top is None or n < args.top):
        matching = sweep.block_count(args.expr, processes=_big(skeleton))
        if matching > n:  # the rest have no finite value to rank by
            say(f"cusweep: {matching - n:,} matching grid point(s) have no finite {args.by} (NaN) and are "
                "not ranked")
    if more:
        say(f"cusweep: showing the first {args.limit} matching grid points; more match (use --limit 0 for "
            "all, --count to count them)")
    return 0


#: grid points from which the command line reads blocks on a process pool (one process per usable CPU)
#: rather than on threads: the pool's start (imports in each process, ~0.5 s) pays for itself
PROCESS_POOL_POINTS = 10**9


def big_store(skeleton: Any) -> bool:
    """Whether the command line reads this store's blocks on a process pool (``PROCESS_POOL_POINTS``)."""
    return math.prod(int(n) for n in skeleton.sizes.values()) >= PROCESS_POOL_POINTS


_big = big_store


def _write(batches: Iterable[dict[str, np.ndarray]], columns: Sequence[str], units: dict[str, str],
           coords: set[str], fmt: str, si: bool) -> int:
    """Write batches of columns (name -> values at the points) to stdout in ``fmt``, formatted column by
    column; returns how many rows were written."""
    n = 0
    if fmt == "json":
        sys.stdout.write("[")
        keys = [json.dumps(c) + ": " for c in columns]
        for batch in batches:
            texts = [_json_cells(batch[c], c in coords) for c in columns]
            for row in zip(*texts, strict=True):
                fields = ", ".join(k + v for k, v in zip(keys, row, strict=True))
                sys.stdout.write(("," if n else "") + "\n {" + fields + "}")
                n += 1
        sys.stdout.write("\n]\n" if n else "]\n")
        return n
    if fmt == "csv":
        from ..display import header

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow([header(c, units[c], si=True) for c in columns])
        for batch in batches:
            cells = list(zip(*[_csv_cells(batch[c], c in coords) for c in columns], strict=True))
            w.writerows(cells)
            n += len(cells)
        return n
    widths: list[int] | None = None
    for batch in batches:
        rows = _rows(batch, columns)
        lines, widths = table_lines(rows, columns, units, si=si, widths=widths, head=n == 0)
        if lines:
            sys.stdout.write("\n".join(lines) + "\n")
        n += len(rows)
    return n


def _rows(batch: dict[str, np.ndarray], columns: Sequence[str]) -> list[dict[str, Any]]:
    lists = {c: [str(x) for x in batch[c].tolist()] if batch[c].dtype.kind in "OUST" else batch[c].tolist()
             for c in columns}
    n = len(lists[columns[0]]) if columns else 0
    return [{c: lists[c][i] for c in columns} for i in range(n)]


def table_lines(rows: Sequence[dict[str, Any]], columns: Sequence[str], units: dict[str, str], *,
                si: bool = False, widths: list[int] | None = None, head: bool = True
                ) -> tuple[list[str], list[int]]:
    """Rows as aligned table lines in display units (``si``: store units), the unit in each header; the
    column widths (pass them back for the next batch of a stream)."""
    from ..display import format_number, header, to_display

    heads = [header(c, units.get(c, "1"), si=si) for c in columns]
    body = [[format_number(to_display(c, r[c], si=si)) for c in columns] for r in rows]
    if widths is None:
        widths = [max([len(h)] + [len(b[i]) for b in body]) for i, h in enumerate(heads)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True))] if head and rows else []
    lines += ["  ".join(x.rjust(w) for x, w in zip(b, widths, strict=True)) for b in body]
    return lines, widths


def _coord_texts(a: np.ndarray, fmt: Any) -> list[str]:
    """Texts of a coordinate column, each grid value formatted once (a column holds few distinct values)."""
    uniq, inverse = np.unique(a, return_inverse=True)
    texts = np.asarray([fmt(float(f"{x:.15g}")) if math.isfinite(x) else fmt(x) for x in uniq.tolist()],
                       dtype=object)
    return texts[inverse.reshape(-1)].tolist()  # type: ignore[no-any-return]


def _csv_cells(a: np.ndarray, coord: bool) -> list[str]:
    """A column as CSV texts (store units): floats exact (coordinates to 15 significant digits), bools
    true/false, NaN as nan."""
    if a.dtype == bool:
        return np.where(a, "true", "false").tolist()  # type: ignore[no-any-return]
    if a.dtype.kind == "f":
        return _coord_texts(a, repr) if coord else list(map(repr, a.tolist()))
    return [str(x) for x in a.tolist()]


def _json_float(x: float) -> str:
    return repr(x) if math.isfinite(x) else "null"


def _json_cells(a: np.ndarray, coord: bool) -> list[str]:
    """A column as JSON texts (store units): NaN as null, coordinates to 15 significant digits."""
    if a.dtype == bool:
        return np.where(a, "true", "false").tolist()  # type: ignore[no-any-return]
    if a.dtype.kind == "f":
        return _coord_texts(a, _json_float) if coord else list(map(_json_float, a.tolist()))
    if a.dtype.kind in "iu":
        return [str(x) for x in a.tolist()]
    return [json.dumps(str(x)) for x in a.tolist()]
