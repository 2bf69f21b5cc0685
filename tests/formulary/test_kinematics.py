import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cusweep import constants as k
from cusweep.formulary import kinematics as kin

from . import strategies as S


def _edges(l, A, E, hwp):
    gamma = kin.lorentz_factor(E)
    q = kin.undulator_parameter(A, l, gamma)
    Q = kin.resonance_factor(q)
    Om = kin.omega_cu(l)
    gth = kin.threshold_gamma(l, Q, hwp)
    return gamma, q, Q, Om, gth, kin.omega_minus(Om, gamma, Q, gth), kin.omega_plus(Om, gamma, Q, gth)


@given(S.period, S.amplitude, S.energy, S.plasma_energy)
def test_soft_edge_below_hard_edge_above_threshold(l, A, E, hwp):
    gamma, q, Q, Om, gth, wm, wp = _edges(l, A, E, hwp)
    if gamma > gth:
        assert wm <= wp
    else:
        assert np.isnan(wm) and np.isnan(wp)


@given(S.period, S.amplitude, S.energy, S.plasma_energy)
def test_product_of_edges(l, A, E, hwp):
    # ω−·ω+ = Ω²γ⁴/Q² · (γth/γ)² = ωp²γ²/Q   [G24v1] Eq. (12b)
    gamma, q, Q, Om, gth, wm, wp = _edges(l, A, E, hwp)
    if gamma > gth:
        wpl = kin.plasma_frequency(hwp)
        np.testing.assert_allclose(wm * wp, wpl**2 * gamma**2 / Q, rtol=1e-6)


@given(S.period, S.amplitude, S.plasma_energy, st.floats(50.0, 1e4))
def test_soft_edge_tends_to_eq13(l, A, hwp, ratio):
    # ω− → ωp²/(2Ω) as γ/γth → ∞, with relative error ≈ (γth/γ)²/4
    gamma_probe = 1e4
    q = kin.undulator_parameter(A, l, gamma_probe)
    Q = kin.resonance_factor(q)
    gth = kin.threshold_gamma(l, Q, hwp)
    gamma = ratio * gth
    Om = kin.omega_cu(l)
    wm = kin.omega_minus(Om, gamma, Q, gth)
    approx = kin.omega_minus_approx(Om, hwp)
    # Eq. (12b) with the same Q, in 50-digit decimal arithmetic (the float form 1 − √(1 − x) cancels)
    wm_exact = _omega_minus_decimal(Om, gamma, Q, gth)
    np.testing.assert_allclose(wm, wm_exact, rtol=1e-13)
    assert abs(wm / approx - 1) <= 0.3 / ratio**2 + 1e-6


def _omega_minus_decimal(Om, gamma, Q, gth):
    from decimal import Decimal, getcontext

    getcontext().prec = 50
    g, x = Decimal(float(gamma)), (Decimal(float(gth)) / Decimal(float(gamma))) ** 2
    return float(Decimal(float(Om)) * g * g / Decimal(float(Q)) * (1 - (1 - x).sqrt()))


@pytest.mark.parametrize("ratio", [1.0 + 1e-9, 1.001, 2.0, 1e2, 1e4, 1e6, 1e8])
def test_soft_edge_keeps_full_precision(ratio):
    """No cancellation in ω−: full float64 precision from just above threshold to γ/γth = 10⁸."""
    Om, Q, gth = 1.3455e14, 2.15, 629.3
    wm = kin.omega_minus(Om, ratio * gth, Q, gth)
    assert wm == pytest.approx(_omega_minus_decimal(Om, ratio * gth, Q, gth), rel=1e-13)


def test_edges_are_nan_at_and_below_threshold():
    Om, Q, gth = 1.3455e14, 2.15, 629.3
    for gamma in (gth, 0.5 * gth):
        assert np.isnan(kin.omega_minus(Om, gamma, Q, gth)) and np.isnan(kin.omega_plus(Om, gamma, Q, gth))
    assert kin.above_threshold(gth, gth) is False


def test_threshold_at_paper_point():
    gamma, q, Q, Om, gth, wm, wp = _edges(1.4e-3, 1.27e-8, 13.6e9, 38.0)
    assert gth == pytest.approx(629.3, rel=1e-3)
    assert k.hbar * wp == pytest.approx(58.3e6, rel=2e-3)
    assert k.hbar * wm == pytest.approx(8153.8, rel=1e-4)


def test_omega_plus_approx_matches_exact_far_above_threshold():
    gamma, q, Q, Om, gth, wm, wp = _edges(1.4e-3, 1.27e-8, 13.6e9, 38.0)
    np.testing.assert_allclose(kin.omega_plus_approx(Om, gamma, Q), wp, rtol=(gth / gamma) ** 2)


def test_resonant_period_places_soft_edge_at_the_photon_energy():
    for hwp, photon in [(38.0, 8300.0), (31.05, 8300.0), (44.1, 12000.0)]:
        l = kin.resonant_period(photon, hwp)
        np.testing.assert_allclose(k.hbar * kin.omega_minus_approx(kin.omega_cu(l), hwp), photon, rtol=1e-12)


@pytest.mark.parametrize(
    "fn, args",
    [
        (kin.undulator_parameter, (1.27e-8, 1.4e-3, 26614.9)),
        (kin.threshold_gamma, (1.4e-3, 2.15, 38.0)),
        (kin.omega_minus, (1e14, 3e4, 2.0, 600.0)),
        (kin.omega_plus, (1e14, 3e4, 2.0, 600.0)),
        (kin.omega_minus_approx, (1e14, 38.0)),
        (kin.omega_plus_approx, (1e14, 3e4, 2.0)),
    ],
)
def test_vectorisation_contract(fn, args):
    scalar = fn(*args)
    assert isinstance(scalar, float)
    arrays = [np.full((3, 1), a) * np.array([1.0, 1.0]) for a in args]
    res = fn(*arrays)
    assert res.shape == (3, 2)
    np.testing.assert_array_equal(res, scalar)
    nan_args = list(args)
    nan_args[0] = np.nan
    assert np.isnan(fn(*nan_args))
    # broadcasting: one argument as a row, another as a column
    a0 = np.array([args[0], args[0] * 1.1])[None, :]
    a1 = np.array([args[1], args[1] * 0.9])[:, None]
    grid = fn(a0, a1, *args[2:])
    assert grid.shape == (2, 2)
    assert grid[1, 0] == pytest.approx(fn(args[0], args[1] * 0.9, *args[2:]))


def test_no_warning_below_threshold():
    with np.errstate(all="raise"):
        res = kin.omega_minus(np.array([1e14, 1e14]), np.array([10.0, 1e4]), 2.0, 600.0)
    assert np.isnan(res[0]) and np.isfinite(res[1])
