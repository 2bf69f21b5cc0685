import numpy as np
import pytest
from hypothesis import given

from cusweep import constants as k
from cusweep.formulary import kinematics as kin
from cusweep.formulary import spectrum as spec

from . import strategies as S


@given(S.period, S.amplitude, S.energy, S.plasma_energy, S.thickness)
def test_soft_line_two_forms_of_eq15_agree(l, A, E, hwp, L):
    # Eq. (15): N_ph = πα n q² ω−²/(2QΩω+) = πα n (q l/(2γλ−))²  (λ−, not the printed λ+)
    gamma = kin.lorentz_factor(E)
    q = kin.undulator_parameter(A, l, gamma)
    Q = kin.resonance_factor(q)
    Om = kin.omega_cu(l)
    wm = kin.omega_minus_approx(Om, hwp)
    wp = kin.omega_plus_approx(Om, gamma, Q)
    n = spec.n_periods(L, l)
    first = np.pi * k.alpha * n * q**2 * wm**2 / (2 * Q * Om * wp)
    np.testing.assert_allclose(spec.soft_line_photons(n, q, l, gamma, kin.wavelength(wm)), first, rtol=1e-10)


def test_soft_line_paper_value():
    # Sec. V: total incoherent photons Nb·N_ph = 2.5e10 (2.46e10 re-derived)
    n = spec.n_periods(0.14, 1.4e-3)
    gamma = kin.lorentz_factor(13.6e9)
    q = kin.undulator_parameter(1.27e-8, 1.4e-3, gamma)
    lam = kin.wavelength(kin.omega_minus_approx(kin.omega_cu(1.4e-3), 38.0))
    assert 1.56e9 * spec.soft_line_photons(n, q, 1.4e-3, gamma, lam) == pytest.approx(2.46e10, rel=5e-3)


def test_nan_in_nan_out():
    assert np.isnan(spec.soft_line_photons(np.nan, 1.0, 1.0, 1.0, 1.0))
    assert np.isnan(spec.spectral_density(np.nan, 1.0, 1.5, 10.0, 1.0, 2.0, 8.0))
    res = spec.n_periods(np.array([0.1, np.nan]), 0.01)
    assert res[0] == pytest.approx(10.0) and np.isnan(res[1])
