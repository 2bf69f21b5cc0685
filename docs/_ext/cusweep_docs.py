"""Directives that generate reference tables from the code, so the documentation cannot drift from it:

``cusweep-cli``          the command-line reference (what ``cusweep COMMAND --help`` prints, from argparse)
``cusweep-variables``    the store's coordinates and variables (``cusweep.quantities``: units, meaning, source)
``cusweep-constraints``  the feasibility constraints (``cusweep.feasibility.CONSTRAINTS``)
``cusweep-display``      the display units (``cusweep.display.DISPLAY``)
"""

from __future__ import annotations

import argparse
from typing import Any

from docutils import nodes
from sphinx.util.docutils import SphinxDirective


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


class CliReference(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        from cusweep.cli import build_parser

        parser = build_parser()
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        out: list[nodes.Node] = []
        top = nodes.section(ids=["cusweep"])
        top += nodes.title(text="cusweep")
        top += nodes.literal_block(text=_help(parser, "cusweep"))
        out.append(top)
        for name, sub in _subparsers(parser).items():
            sec = nodes.section(ids=[f"cusweep-{name}"])
            sec += nodes.title(text=f"cusweep {name}")
            sec += nodes.literal_block(text=_help(sub, f"cusweep {name}"))
            out.append(sec)
        return out


def _help(parser: argparse.ArgumentParser, prog: str) -> str:
    parser.prog = prog
    import os

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return parser.format_help()
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def _table(head: list[str], rows: list[list[str]], widths: list[int]) -> nodes.table:
    table = nodes.table()
    group = nodes.tgroup(cols=len(head))
    table += group
    for w in widths:
        group += nodes.colspec(colwidth=w)
    thead = nodes.thead()
    group += thead
    thead += _row(head)
    body = nodes.tbody()
    group += body
    for r in rows:
        body += _row(r)
    return table


def _row(cells: list[str]) -> nodes.row:
    row = nodes.row()
    for c in cells:
        entry = nodes.entry()
        entry += nodes.paragraph(text=c)
        row += entry
    return row


class Variables(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        from cusweep.quantities import COORDS, VARIABLES

        rows = [[q.name, q.units, q.long_name + (" (bool)" if q.kind == "bool" else ""), q.source]
                for q in (*COORDS.values(), *VARIABLES.values())]
        return [_table(["name", "units", "meaning", "source"], rows, [18, 8, 34, 40])]


class Constraints(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        from cusweep.feasibility import CONSTRAINTS

        rows = [[c.name, c.text, c.margin, f"{c.ratio} {'<' if c.strict else '<='} 1", c.source]
                for c in CONSTRAINTS]
        return [_table(["constraint", "condition", "margin (stored name)", "feasible when", "source"], rows,
                       [14, 22, 20, 20, 34])]


class Display(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        from cusweep.display import DISPLAY
        from cusweep.quantities import COORDS, VARIABLES

        units = {**{n: q.units for n, q in COORDS.items()}, **{n: q.units for n, q in VARIABLES.items()}}
        rows = [[n, units.get(n, ""), u.label, f"{u.factor:g}"] for n, u in DISPLAY.items()]
        return [_table(["name", "store unit", "display unit", "display unit in store units"], rows,
                       [22, 12, 14, 20])]


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("cusweep-cli", CliReference)
    app.add_directive("cusweep-variables", Variables)
    app.add_directive("cusweep-constraints", Constraints)
    app.add_directive("cusweep-display", Display)
    return {"version": "1", "parallel_read_safe": True}
