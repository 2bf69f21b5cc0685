"""The angle-integrated spectrum (formulary.angular): the sinc² integrals against adaptive quadrature,
the exact edge at half the full lobe, the transverse form factor only ever lowers the count, and the
counts stay below the whole first harmonic."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from cusweep import constants as k
from cusweep.formulary import angular as an
from cusweep.formulary import kinematics as kin
from cusweep.formulary import spectrum as spec

from . import strategies as S


def damped_by_quadrature(A, mu):
    """∫_0^∞ sinc²(A − t) e^{−μt} dt by scipy.integrate.quad: the body up to T adaptively, the tail beyond
    T as its smooth part minus its Fourier parts (QAWF), since sin²u = (1 − cos 2u)/2."""

    def f(t):
        u = A - t
        return (1.0 if u == 0 else (math.sin(u) / u) ** 2) * math.exp(-mu * t)

    width = 60.0 if mu == 0 else min(60.0, 60.0 / mu)
    T = max(A, 0.0) + width + 10.0
    marks = (max(A, 0.0), max(A, 0.0) + width, width, 1.0 / mu if mu else 0)
    # break points at the lower limit itself or a hair apart (A ~ 1e-14: 6 and 6 + 1e-14) upset QUADPACK:
    # keep interior ones at least 1e-9 apart
    points: list[float] = []
    for p in sorted(p for p in marks if 1e-9 < p < T):
        if not points or p - points[-1] > 1e-9:
            points.append(p)
    body = integrate.quad(f, 0.0, T, points=points or None, limit=5000, epsabs=0, epsrel=1e-12)[0]

    def g(t):
        return math.exp(-mu * t) / (2 * (t - A) ** 2)

    smooth = integrate.quad(g, T, math.inf, epsabs=0, epsrel=1e-12)[0]
    c = integrate.quad(g, T, math.inf, weight="cos", wvar=2.0)[0]
    s = integrate.quad(g, T, math.inf, weight="sin", wvar=2.0)[0]
    return body + smooth - math.cos(2 * A) * c - math.sin(2 * A) * s


def test_sinc2_integral_limits_and_half_lobe():
    # G(−∞) = 0, G(0) = π/2, G(∞) = π: the exact edge holds half of the full sinc² lobe
    assert an.sinc2_integral(0.0) == pytest.approx(math.pi / 2, rel=1e-15)
    assert an.sinc2_integral(1e7) == pytest.approx(math.pi, rel=1e-6)
    assert an.sinc2_integral(-1e7) == pytest.approx(0.0, abs=1e-6)
    assert an.sinc2_integral(0.0) == pytest.approx(0.5 * an.sinc2_integral(1e9), rel=1e-8)


@settings(max_examples=60, deadline=None)
@given(st.floats(-300.0, 300.0))
def test_sinc2_integral_equals_quadrature(A):
    assert an.sinc2_integral(A) == pytest.approx(damped_by_quadrature(A, 0.0), rel=1e-8)


@settings(max_examples=120, deadline=None)
@given(st.floats(-300.0, 300.0), st.floats(-8.0, 6.0))
def test_damped_integral_equals_quadrature(A, log_mu):
    # both branches (closed form below MU_QUADRATURE, Gauss-Laguerre above) against adaptive quadrature
    # (the adaptive reference itself is good to ~1e-8 here; an mpmath check at 30 digits of one such point
    # agreed with the closed form to 1e-13)
    mu = 10.0**log_mu
    got = an.sinc2_integral_damped(A, mu)
    if got != pytest.approx(damped_by_quadrature(A, mu), rel=1e-7):
        # far in the tail the double-precision reference loses digits (A = -69, mu = 0.1: 1.7e-7): a
        # 30-digit mpmath quadrature of the oscillatory integral decides
        assert got == pytest.approx(damped_by_mpmath(A, mu), rel=1e-10)


def damped_by_mpmath(A, mu):
    """∫_0^∞ sinc²(A − t) e^{−μt} dt with mpmath.quadosc at 30 digits (slow: only where scipy's disagrees)."""
    import mpmath as mp

    with mp.workdps(30):
        a, m = mp.mpf(A), mp.mpf(mu)

        def f(t):
            u = a - t
            return (mp.sin(u) / u) ** 2 * mp.exp(-m * t) if u != 0 else mp.exp(-m * t)

        return float(mp.quadosc(f, [0, mp.inf], omega=2))


@pytest.mark.parametrize("A", [-20.0, -1.0, 0.0, 1e-12, 0.7, 3.0, math.pi, 50.0])
def test_damped_integral_continuous_across_branches(A):
    # the closed form and the quadrature meet at MU_QUADRATURE
    lo = an.sinc2_integral_damped(A, an.MU_QUADRATURE * (1 - 1e-12))
    hi = an.sinc2_integral_damped(A, an.MU_QUADRATURE)
    assert lo == pytest.approx(hi, rel=1e-9)


def test_damped_integral_special_values():
    mu = np.array([1e-3, 0.5, 2.0, 40.0])
    # H(0, μ) = arctan(2/μ) − (μ/4) ln(1 + 4/μ²)
    np.testing.assert_allclose(an.sinc2_integral_damped(0.0, mu),
                               np.arctan(2 / mu) - mu / 4 * np.log1p(4 / mu**2), rtol=1e-12)
    # μ → 0 is G; μ = ∞ (no radiating length) is 0; NaN in, NaN out
    assert an.sinc2_integral_damped(2.5, 1e-12) == pytest.approx(an.sinc2_integral(2.5), rel=1e-9)
    assert an.sinc2_integral_damped(2.5, np.inf) == 0.0
    # around A = 0 the first-order expansion and the closed form agree
    for m in (1e-6, 0.3, 7.0):
        for a in (-2e-9, -1e-12, 5e-324, 1e-10, 3e-9):
            assert an.sinc2_integral_damped(a, m) == pytest.approx(an.sinc2_integral_damped(0.0, m), rel=1e-8)
    assert np.isnan(an.sinc2_integral_damped(np.nan, 1.0))
    assert np.isnan(an.sinc2_integral_damped(1.0, np.nan))


@settings(max_examples=80, deadline=None)
@given(st.floats(-100.0, 100.0), st.floats(0.0, 1e4), st.floats(0.0, 1e4))
def test_form_factor_only_lowers_the_count(A, mu1, mu2):
    # H(A, μ) decreases with μ, and H ≤ G = H(A, 0): photons_coh ≤ photons_coh with σR = 0
    lo, hi = sorted((mu1, mu2))
    assert an.sinc2_integral_damped(A, hi) <= an.sinc2_integral_damped(A, lo) * (1 + 1e-12)
    assert an.sinc2_integral_damped(A, hi) <= an.sinc2_integral(A) * (1 + 1e-12)


@given(S.period, S.amplitude, S.energy, S.plasma_energy)
def test_edge_argument_vanishes_at_the_exact_edges(l, A, E, hwp):
    gamma = kin.lorentz_factor(E)
    Q = kin.resonance_factor(kin.undulator_parameter(A, l, gamma))
    Om = kin.omega_cu(l)
    g_th = kin.threshold_gamma(l, Q, hwp)
    if not gamma > 1.01 * g_th:
        return
    for w in (kin.omega_minus(Om, gamma, Q, g_th), kin.omega_plus(Om, gamma, Q, g_th)):
        # x(ω∓, 0) = 0 up to rounding of the terms π(1 − Qω/2Ωγ² − ωp²/2Ωω), each at most π
        assert abs(an.edge_argument(w, Om, gamma, Q, hwp)) < 1e-9
    # between the edges radiation exists at zero angle: x > 0
    w_mid = math.sqrt(kin.omega_minus(Om, gamma, Q, g_th) * kin.omega_plus(Om, gamma, Q, g_th))
    assert an.edge_argument(w_mid, Om, gamma, Q, hwp) > 0


@given(S.period, S.amplitude, S.energy, S.plasma_energy, S.thickness)
def test_soft_count_below_the_whole_first_harmonic(l, A, E, hwp, L):
    # photons_soft ≤ παq²n/Q (the whole first harmonic, all angles and frequencies)
    gamma = kin.lorentz_factor(E)
    q = kin.undulator_parameter(A, l, gamma)
    Q = kin.resonance_factor(q)
    Om = kin.omega_cu(l)
    n = spec.n_periods(L, l)
    g_th = kin.threshold_gamma(l, Q, hwp)
    if not (gamma > g_th and n >= 1):
        return
    wm = kin.omega_minus(Om, gamma, Q, g_th)
    soft = an.photons_soft(an.spectral_density(wm, q, n, Om, gamma, 0.0), wm, n)
    assert 0 < soft <= an.first_harmonic_photons(q, Q, n)


def test_spectrum_at_the_exact_edge_is_half_the_full_lobe():
    # S(ω−) = α n q² (π/2)/(2Ωγ²): half of α n q² π/(2Ωγ²), the lobe integrated over all angles
    n, q, Om, gamma = 100.0, 1.5, 1.3e14, 2.6e4
    edge = an.spectral_density(1e19, q, n, Om, gamma, 0.0)
    full = an.angular_prefactor(q, n, Om, gamma) * math.pi
    assert edge == pytest.approx(full / 2, rel=1e-14)
    # slightly above the edge the line gets more than half
    assert an.spectral_density(1e19, q, n, Om, gamma, 3.0 / n) > edge


def test_counts_scale_and_energy_fraction():
    s = 2.0e-20
    c1 = an.photons_coh(s, 1e9, 1e-3, 1.0)
    assert an.photons_coh(s, 2e9, 1e-3, 0.5) == pytest.approx(c1, rel=1e-14)  # ∝ Nb² b²
    assert an.photons_incoh(s, 1e9, 1e-3) / c1 == pytest.approx(8 / (math.sqrt(math.pi) * 1e9), rel=1e-14)
    assert an.energy_fraction(c1, 8e3, 1e9, 1e10) == pytest.approx(c1 * 8e3 / 1e19, rel=1e-14)
    assert an.damping(k.c, 1.0, 2.0 / math.pi, 1.0) == pytest.approx(1.0 / k.c, rel=1e-14)
