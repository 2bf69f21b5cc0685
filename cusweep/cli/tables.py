"""``cusweep paper``, ``cusweep materials``, ``cusweep facilities``: the built-in tables."""

from __future__ import annotations

import argparse

from ._common import out


class Paper:
    NAME = "paper"
    HELP = "the paper's Sec. V example: paper value, computed value, ratio, erratum"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.description = (
            "The Sec. V example of [G24v1] computed by cusweep's formulary: for every quantity the "
            "paper's value, the computed value, their ratio and the erratum note where they differ "
            "(docs/physics.md)."
        )

    @staticmethod
    def main(args: argparse.Namespace) -> int:
        from ..paper import table

        out(table())
        return 0


class Materials:
    NAME = "materials"
    HELP = "the built-in crystal channels with sources"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.description = (
            "The built-in planar channels (d, a_TF, U0, U'max, plasma energy, I, attenuation length at "
            "8.3 keV from xraydb), each with its source; use a name as `crystal = \"NAME\"` in a sweep."
        )

    @staticmethod
    def main(args: argparse.Namespace) -> int:
        from ..materials import crystals_table

        out(crystals_table())
        return 0


class Facilities:
    NAME = "facilities"
    HELP = "the built-in facility presets with sources"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.description = (
            "The facility beam presets (energy, bunch population, bunch length) with sources and dates;"
            " use a name as `facility = \"NAME\"` in a sweep or with --facility. Positron beams at "
            "XFELs are hypothetical."
        )

    @staticmethod
    def main(args: argparse.Namespace) -> int:
        from ..materials import facilities_table

        out(facilities_table())
        return 0
