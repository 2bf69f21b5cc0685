"""Command line: argv -> the library (``cusweep.open`` and friends). Exit 0 ok, 1 failure, 2 bad input.

One module per command, registered in ``COMMANDS``; each has ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``main(args) -> exit code``. This package is the only place that prints: the library returns result
objects and raises typed errors (``cusweep.errors``), mapped here to one line on stderr and an exit code
(``SpecError`` and its subclasses: 2, nothing written; every other ``CusweepError``: 1). Library errors
name parameters (``at: ...``); they are shown with the command's flag (``--at: ...``).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from ..errors import CusweepError, SpecError, one_line, os_error_line, raised_by, shorten
from . import best, cluster, explore, infer_b, map, pareto, query, refine, report, robust, run, status, tables

DESCRIPTION = """\
cusweep maps the design space of a crystalline undulator (CU) driven by an FEL-modulated positron
bunch (arXiv:2412.10205): sweep CU period, amplitude, beam energy, bunch length and modulation depth,
store every yield labelled with units in one Zarr store, then query it and draw feasibility maps.

typical session:
  cusweep run sweeps/paper_sec5.toml --store sec5.zarr      # compute (resumes if interrupted)
  cusweep status sec5.zarr                                  # blocks done / total
  cusweep query sec5.zarr "n_coh > 1e15 and feasible" --count
  cusweep map sec5.zarr --x period --y amplitude --var n_coh -o map.png

documentation: docs/ in the repository (user guide, sweep file, store schema, CLI, Python API, physics)
"""

#: the commands, in the order of ``cusweep --help``
COMMANDS: tuple[Any, ...] = (run, status, query, map, best, refine, pareto, robust, report, explore,
                             tables.Paper, infer_b, tables.Materials, tables.Facilities, cluster)

#: library parameter names -> the command-line flag that gives them (for error messages)
FLAGS = {"store": "--store", "shard": "--shard",
         "at": "--at", "facility": "--facility", "where": "--where", "by": "--by",
         "x": "--x", "y": "--y", "var": "--var", "output": "-o", "rel_errors": "--rel-error",
         "error": "--error", "top": "--top", "limit": "--limit", "per": "--per", "vmin/vmax": "--vmin/--vmax",
         "vmin": "--vmin", "vmax": "--vmax", "clip": "--clip", "mark": "--mark", "contour": "--contour",
         "vary": "--vary", "samples": "--samples", "seed": "--seed", "zoom": "--zoom", "extend": "--extend",
         "maximise/minimise": "--max/--min"}
_PARAM = re.compile(r"^(" + "|".join(sorted(FLAGS, key=len, reverse=True)) + r")(?=[: ]|$)")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # type: ignore[override]  # one line, exit 2, no usage dump
        raise SpecError(f"{self.prog}: {message}; see `{self.prog} --help`")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (also the source of docs/cli.md)."""
    p = _Parser(prog="cusweep", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    from .. import __version__

    p.add_argument("--version", action="version", version=f"cusweep {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for cmd in COMMANDS:
        parser = sub.add_parser(cmd.NAME, help=cmd.HELP)
        cmd.add_arguments(parser)
        parser.set_defaults(handler=cmd.main)
    return p


#: phrases of library messages that name a parameter inside the text, as the command line says them
_PHRASES = (("design point with at,", "design point with --at,"), ("e.g. at ", "e.g. --at "),
            ("(choose with at ", "(choose with --at "), ("relax the where condition", "relax --where"))


def flagged(message: str) -> str:
    """A library message as the command line shows it: its leading parameter name (``at: ...``,
    ``facility lcls: ...``) as the flag that gives it (``--at: ...``), and the few phrases that name a
    parameter inside the text likewise."""
    message = _PARAM.sub(lambda m: FLAGS[m.group(1)], message, count=1)
    for library, cli in _PHRASES:
        message = message.replace(library, cli)
    return message


def _dispatch(args: argparse.Namespace) -> int:
    return int(args.handler(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        if not args.command:
            parser.print_help()
            return 2
        return int(_dispatch(args) or 0)
    except SpecError as exc:  # quoted inputs cut to short excerpts: a 10,000-character query is not echoed
        print(f"cusweep: error: {shorten(flagged(str(exc)))}", file=sys.stderr)
        return 2
    except CusweepError as exc:
        # a store write that failed (disk full, ...) can leave sibling zarr writes whose futures asyncio
        # reports at exit ("Future exception was never retrieved"): noise after the one-line answer
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        print(f"cusweep: {shorten(flagged(str(exc)))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # a store write cut short leaves a pending zarr task whose "Task was destroyed" log line is noise
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        print("cusweep: interrupted; the store is resumable: rerun the same command", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if _decode_error(exc):
            print(
                f"cusweep: a chunk of the store cannot be decoded ({one_line(exc, 200)}); the store is "
                "damaged: `cusweep status STORE --verify` lists the damaged blocks and `cusweep run "
                "SWEEP.toml --store STORE --repair` recomputes them",
                file=sys.stderr,
            )
            return 1
        http = raised_by(exc, ("aiohttp",))
        if http is not None:  # fsspec's HTTP file system (http:// and https:// stores)
            print(
                f"cusweep: cannot read the store over HTTP ({one_line(http, 200)}); check the URL and that "
                "the server is up (an http(s):// store is read-only: `run` needs a directory or an "
                "object-store URL such as s3://bucket/sweep.zarr)",
                file=sys.stderr,
            )
            return 1
        if not _object_store_error(exc):
            refused = os_error_line(exc)  # what the operating system refused (a path too long, a permission)
            if refused is None:
                raise
            print(f"cusweep: {refused[1]}", file=sys.stderr)
            return refused[0]
        print(
            f"cusweep: cannot access the object store ({type(exc).__name__}: {' '.join(str(exc).split())}); "
            "give its credentials in the environment, as for its own tools (S3: AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY or AWS_PROFILE, and AWS_ENDPOINT_URL for an S3-compatible server), "
            "never in the sweep file",
            file=sys.stderr,
        )
        return 1


#: modules whose exceptions mean "the object store refused us or cannot be reached" (credentials, endpoint)
_OBJECT_STORE_MODULES = ("botocore", "aiobotocore", "s3fs", "gcsfs", "google.auth", "adlfs", "azure")


def _decode_error(exc: BaseException) -> bool:
    """True when ``exc`` was raised while decoding a stored chunk (numcodecs or zarr's codecs): a
    truncated or altered chunk file."""
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename.replace("\\", "/")
        if "/numcodecs/" in name or "/zarr/codecs/" in name:
            return True
        tb = tb.tb_next
    return False


def _object_store_error(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if type(exc).__module__.startswith(_OBJECT_STORE_MODULES):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
