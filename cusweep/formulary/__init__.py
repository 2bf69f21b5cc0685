"""The paper's formulas as pure numpy functions, CGS units inside (cm, s, eV for ħω).

Import a module and call its functions: ``kinematics.undulator_parameter(A, l, gamma)``.
This package never imports dask, xarray or zarr (a test enforces it).

Reference key: [G24v1] H. L. Gevorgyan, L. A. Gevorgian, arXiv:2412.10205 v1.
"""

from . import channeling, coherence, inverse, kinematics, spectrum

__all__ = ["channeling", "coherence", "inverse", "kinematics", "spectrum"]

PAPER = "[G24v1] H. L. Gevorgyan, L. A. Gevorgian, arXiv:2412.10205 v1 (2024)"
