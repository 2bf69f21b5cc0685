"""hypothesis strategies over physical ranges (CGS: cm, eV)."""

from hypothesis import strategies as st

period = st.floats(1e-4, 1e-2)  # 1 um .. 100 um
amplitude = st.floats(1e-9, 1e-7)  # 0.1 .. 10 angstrom
energy = st.floats(1e8, 5e10)  # 0.1 .. 50 GeV
plasma_energy = st.floats(20.0, 90.0)  # eV
potential_depth = st.floats(10.0, 150.0)  # eV
sigma_z = st.floats(1e-5, 1e-2)  # 0.1 um .. 100 um
bunching = st.floats(1e-3, 1.0)
n_positrons = st.floats(1e6, 1e11)
thickness = st.floats(1e-3, 1.0)  # 10 um .. 1 cm
