"""The paper's formulas as pure numpy functions, CGS units inside (cm, s, eV for ħω).

Import a module and call its functions: ``kinematics.undulator_parameter(A, l, gamma)``.
This package never imports dask, xarray or zarr (a test enforces it).

The paper's yields (``spectrum``, ``coherence``) are photons per unit ϑ² at zero angle: Eq. (14) is
d²N/(dω dϑ²) at ϑ = 0. ``angular`` integrates Eq. (12a) over the angle: photon counts.

Reference key: [G24v1] H. L. Gevorgyan, L. A. Gevorgian, arXiv:2412.10205 v1.
"""

from . import angular, channeling, coherence, inverse, kinematics, spectrum

__all__ = ["angular", "channeling", "coherence", "inverse", "kinematics", "spectrum"]

PAPER = "[G24v1] H. L. Gevorgyan, L. A. Gevorgian, arXiv:2412.10205 v1 (2024)"
