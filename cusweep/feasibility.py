"""The one definition of a feasible design: a table of constraints, each a named margin that must stay
below 1 (or at most 1).

The model emits every margin as a named quantity (``cusweep.quantities``); ``feasible``, the maps'
boundary lines, ``best``'s margins and the run summary's counters all read this table, so a new
condition is added here (and its margin in the model) and nowhere else.

Pure Python and numpy: imported by the model on workers, by the maps and by the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Constraint:
    """One condition of feasibility: ``margin < 1`` (``margin <= 1`` when not ``strict``)."""

    name: str  #: short name ("channeling")
    margin: str  #: the model quantity whose value must stay below 1
    strict: bool  #: True: margin < 1; False: margin <= 1
    text: str  #: the condition as a physicist writes it ("q < q_ch")
    ratio: str  #: the margin as a ratio, for tables ("q/q_ch")
    source: str  #: where the condition comes from

    def holds(self, margin: Any) -> Any:
        """Boolean array: where the condition holds (False where the margin is NaN)."""
        m = np.asarray(margin)
        return m < 1.0 if self.strict else m <= 1.0


CONSTRAINTS: tuple[Constraint, ...] = (
    Constraint("channeling", "channeling_ratio", True, "q < q_ch", "q/q_ch",
               "[G24v1] Sec. III: theta_max below the Lindhard angle"),
    Constraint("bending", "bending_parameter", True, "C < 1", "C",
               "model beyond [G24v1]: channeling in the bent crystal [KSG13]"),
    Constraint("threshold", "threshold_ratio", True, "gamma > gamma_th", "gamma_th/gamma",
               "[G24v1] Eq. (12b): zero-angle radiation exists"),
    Constraint("coherence", "coherence_ratio", True, "lambda_r < pi sigma_Z / n", "lambda_r n/(pi sigma_Z)",
               "[G24v1] Sec. IV: validity of Eq. (22)"),
    Constraint("dechanneling", "dechanneling_ratio", False, "n l <= L_d(C)", "n l/L_d",
               "[G24v1] below Eq. (15): n <= L_D/l, with L_d(C) [BCK97]"),
    Constraint("energy", "energy_fraction", True, "N_coh hbar omega_r < Nb E", "N_coh hbar omega_r/(Nb E)",
               "energy conservation: the coherent photons (all angles, photons_coh) carry less than the "
               "bunch"),
)

MARGINS: tuple[str, ...] = tuple(c.margin for c in CONSTRAINTS)


def by_name(name: str) -> Constraint:
    """The constraint called ``name`` (KeyError when there is none)."""
    for c in CONSTRAINTS:
        if c.name == name:
            return c
    raise KeyError(name)


def feasible(margins: Mapping[str, Any]) -> Any:
    """AND of every constraint over broadcastable margin arrays (``{margin name: array}``)."""
    result: Any = True
    for c in CONSTRAINTS:
        result = np.logical_and(result, c.holds(margins[c.margin]))
    return result


def failed(margins: Mapping[str, Any]) -> list[Constraint]:
    """The constraints that do not hold at one point (scalar margins)."""
    return [c for c in CONSTRAINTS if not bool(c.holds(margins[c.margin]))]
