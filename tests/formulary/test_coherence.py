import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cusweep import constants as k
from cusweep.formulary import coherence as coh
from cusweep.formulary import inverse
from cusweep.formulary import kinematics as kin
from cusweep.formulary import spectrum as spec

from . import strategies as S


def _point(l, A, E, hwp, L):
    gamma = kin.lorentz_factor(E)
    q = kin.undulator_parameter(A, l, gamma)
    Q = kin.resonance_factor(q)
    Om = kin.omega_cu(l)
    wm = kin.omega_minus_approx(Om, hwp)
    wp = kin.omega_plus_approx(Om, gamma, Q)
    n = spec.n_periods(L, l)
    return gamma, q, Q, Om, wm, wp, n, kin.wavelength(wm)


@given(S.period, S.amplitude, S.energy, S.plasma_energy, S.thickness, S.sigma_z, S.n_positrons, S.bunching)
def test_gain_is_ratio_of_eq22_to_eq23(l, A, E, hwp, L, sz, nb, b):
    gamma, q, Q, Om, wm, wp, n, lam = _point(l, A, E, hwp, L)
    ratio = coh.n_coh(q, L, nb, gamma, sz, lam, b) / coh.n_incoh(q, L, nb, gamma, sz, lam)
    np.testing.assert_allclose(ratio, np.sqrt(np.pi) * nb * b**2 / 8, rtol=1e-12)
    np.testing.assert_allclose(coh.coherence_gain(nb, b), ratio, rtol=1e-12)


@given(
    S.period,
    S.amplitude,
    S.energy,
    S.plasma_energy,
    S.thickness,
    S.sigma_z,
    S.n_positrons,
    S.bunching,
    st.floats(0.01, 100.0),
)
def test_scaling_with_b_and_nb(l, A, E, hwp, L, sz, nb, b, f):
    gamma, q, Q, Om, wm, wp, n, lam = _point(l, A, E, hwp, L)
    base = coh.n_coh(q, L, nb, gamma, sz, lam, b)
    np.testing.assert_allclose(
        coh.n_coh(q, L, nb, gamma, sz, lam, b * min(f, 1 / b)), base * min(f, 1 / b) ** 2, rtol=1e-12
    )  # N_coh ∝ b²
    np.testing.assert_allclose(coh.n_coh(q, L, nb * f, gamma, sz, lam, b), base * f**2, rtol=1e-12)  # ∝ Nb²
    inc = coh.n_incoh(q, L, nb, gamma, sz, lam)
    np.testing.assert_allclose(coh.n_incoh(q, L, nb * f, gamma, sz, lam), inc * f, rtol=1e-12)  # ∝ Nb


@given(S.period, S.amplitude, S.energy, S.plasma_energy, S.thickness, S.sigma_z, S.n_positrons, S.bunching)
def test_detuned_equals_eq22_at_soft_edge(l, A, E, hwp, L, sz, nb, b):
    gamma, q, Q, Om, wm, wp, n, lam = _point(l, A, E, hwp, L)
    dn = spec.spectral_density(wm, q, Q, n, Om, wm, wp)
    np.testing.assert_allclose(
        coh.n_coh_detuned(dn, nb, sz, b), coh.n_coh(q, L, nb, gamma, sz, lam, b), rtol=1e-10
    )


@given(S.period, S.amplitude, S.energy, S.plasma_energy, S.thickness, S.sigma_z, S.n_positrons, S.bunching)
def test_inverse_from_yield_returns_b(l, A, E, hwp, L, sz, nb, b):
    gamma, q, Q, Om, wm, wp, n, lam = _point(l, A, E, hwp, L)
    unit = coh.n_coh(q, L, nb, gamma, sz, lam, 1.0)
    measured = coh.n_coh(q, L, nb, gamma, sz, lam, b)
    b_back, err = inverse.bunching_from_yield(measured, unit)
    np.testing.assert_allclose(b_back, b, rtol=1e-10)
    assert err == 0.0
    b_gain, _ = inverse.bunching_from_gain(coh.coherence_gain(nb, b), nb)
    np.testing.assert_allclose(b_gain, b, rtol=1e-10)


def test_inverse_uncertainty_propagation():
    # σb/b = ½·sqrt((σN/N)² + (σN1/N1)²)
    b, err = inverse.bunching_from_yield(4.0e13, 4.0e15, measured_err=0.1 * 4.0e13, n_coh_unit_err=0.2 * 4e15)
    assert b == pytest.approx(0.1)
    assert err == pytest.approx(0.1 * 0.5 * np.hypot(0.1, 0.2))
    b, err = inverse.bunching_from_gain(3.456e6, 1.56e9, gain_err=3.456e5)
    assert err / b == pytest.approx(0.05)
    assert np.isnan(inverse.bunching_from_yield(-1.0, 1.0)[0])
    assert np.isnan(inverse.bunching_from_gain(1.0, 0.0)[0])


def test_spectral_density_vanishes_at_first_sinc_zero():
    gamma, q, Q, Om, wm, wp, n, lam = _point(1.4e-3, 1.27e-8, 13.6e9, 38.0, 0.14)
    # first zero of sin z / z: solve z(ω) = π for ω just above ω− (bisection on the exact z)
    lo, hi = wm, wm * 1.5
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if spec.sinc_argument(mid, wm, wp, n) < np.pi else (lo, mid)
    peak = spec.spectral_density(wm, q, Q, n, Om, wm, wp)
    assert spec.spectral_density(lo, q, Q, n, Om, wm, wp) < 1e-20 * peak
    # at ω−: z = 0, so dN/dω = πα/(2Q)(qn)² ω−/(Ω ω+)
    assert peak == pytest.approx(np.pi * k.alpha / (2 * Q) * (q * n) ** 2 * wm / (Om * wp), rel=1e-12)
    # the line has relative width ~1/n: at 1.5 ω− the density is far below the peak
    assert spec.spectral_density(wm * 1.5, q, Q, n, Om, wm, wp) < 1e-2 * peak


def test_form_factor_width():
    # relative full width of F_Z between the 1/e points: 2Δω/ωr = λr/(πσZ)
    wr, sz = 1.24e19, 9e-4
    lam = kin.wavelength(wr)
    half = lam / (2 * np.pi * sz)
    assert coh.form_factor(wr * (1 + half), wr, sz, 1.0) == pytest.approx(0.25 / np.e, rel=1e-9)
    assert coh.form_factor(wr, wr, sz, 0.5) == pytest.approx(0.0625)
    assert coh.linewidth(lam, sz) == pytest.approx(half)


def test_coherent_regime_boundary():
    assert coh.coherent_regime(1.0, 100.0 / np.pi * 1.0001, 100.0)
    assert not coh.coherent_regime(1.0, 100.0 / np.pi * 0.9999, 100.0)
    assert isinstance(coh.coherent_regime(1.0, 1.0, 1.0), bool)
    assert k.alpha == pytest.approx(1 / 137.035999, rel=1e-9)


def test_inverse_at_zero_measured_signal():
    b, err = inverse.bunching_from_yield(0.0, 4.58e15)
    assert b == 0.0 and err == 0.0  # exact inputs: no error
    b, err = inverse.bunching_from_yield(0.0, 4.58e15, measured_err=1e13)
    assert b == 0.0 and np.isnan(err)  # sqrt(N) has no first-order error at N = 0
