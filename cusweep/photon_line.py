"""The facility's photon-energy condition, defined once: a design radiates at a facility's FEL photon energy
``E_ph`` when its resonance lies within the CU line width, ``|resonance_energy / E_ph - 1| <= 1/(2 n)``
(``n = n_periods``). In a tuned store (the bunch modulated at each design's own resonance) this selects
the designs; in a detuned store the photon energy is fixed to the facility's instead
(``cusweep.select.facility_photon`` says which applies).

``best``, ``map``, ``report`` and ``robust`` with a facility all use ``line_ratio`` / ``on_line`` /
``on_line_mask`` from here (``cusweep.best`` re-exports them under their former names).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

    from .model import Setup

__all__ = ["LINE_CONDITION", "LINE_OUTPUTS", "line_ratio", "line_ratios", "on_line", "on_line_mask"]

#: the model outputs the condition needs
LINE_OUTPUTS = ("resonance_energy", "n_periods")
#: the condition, for people and for ``--format json``
LINE_CONDITION = "|resonance_energy / photon_energy - 1| <= 1/(2 n_periods)"


def line_ratios(resonance_energy: Any, n_periods: Any, photon_energy: float) -> Any:
    """``2 n |resonance_energy / photon_energy - 1|`` elementwise (numpy, dask or xarray arrays, or floats):
    at most 1 where the design radiates at ``photon_energy``."""
    return 2.0 * n_periods * abs(resonance_energy / photon_energy - 1.0)


def line_ratio(values: Mapping[str, Any], photon_energy: float) -> float:
    """``2 n |resonance_energy / photon_energy - 1|`` of one design (``values`` holds ``resonance_energy``
    and ``n_periods``): at most 1 when it radiates at ``photon_energy`` (its resonance lies within the CU
    line width, relative ``1/(2n)``)."""
    return float(line_ratios(float(values["resonance_energy"]), float(values["n_periods"]), photon_energy))


def on_line(resonance_energy: Any, n_periods: Any, photon_energy: float) -> Any:
    """True where the design radiates at ``photon_energy`` (NaN inputs: False)."""
    with np.errstate(invalid="ignore"):
        return line_ratios(resonance_energy, n_periods, photon_energy) <= 1.0


def on_line_mask(sub: xr.Dataset, setup: Setup | None, photon_energy: float) -> xr.DataArray:
    """Lazy mask of the grid points of ``sub`` whose resonance lies within the line width of
    ``photon_energy``, from the stored ``resonance_energy`` and ``n_periods`` or, when the store lacks
    them, the model on their own (few) dims (``setup`` needed then). Also greyed by ``cusweep explore``."""
    import xarray as xr

    arrays = {}
    for name in LINE_OUTPUTS:
        if name in sub.data_vars:
            arrays[name] = sub[name]
            continue
        if setup is None:
            from .errors import SpecError

            raise SpecError(f"the store holds no {name} and no sweep to compute it from")
        keep = setup.natural_dims(name)
        coords = {d: np.asarray(sub[d].values if d in keep else sub[d].values[:1]) for d in setup.dims}
        from .model import evaluate

        value = evaluate(setup, coords, (name,))[name]
        dims = [d for d in setup.dims if d in keep]
        arrays[name] = xr.DataArray(value, dims=dims, coords={d: sub[d] for d in dims})
    return on_line(arrays["resonance_energy"], arrays["n_periods"], photon_energy)
