import numpy as np
import pytest
from hypothesis import given

from cusweep.formulary import channeling as ch
from cusweep.formulary import kinematics as kin

from . import strategies as S

# physics.md worked check: KSG form, Si(110), a_TF = 0.194 Å, d = 1.92 Å, I = 173 eV
SI = dict(interplanar_spacing=1.92e-8, thomas_fermi_radius=0.194e-8, mean_excitation_energy=173.0)


@pytest.mark.parametrize(
    "E_gev, ksg_mm, bir_mm", [(1, 0.67, 0.49), (5, 3.12, 2.21), (10, 6.06, 4.25), (25, 14.6, 10.1)]
)
def test_dechanneling_worked_check(E_gev, ksg_mm, bir_mm):
    gamma = kin.lorentz_factor(E_gev * 1e9)
    ksg = ch.dechanneling_length_straight(gamma, **SI, model="ksg") * 10
    bir = ch.dechanneling_length_straight(gamma, **SI, model="biryukov") * 10
    assert ksg == pytest.approx(ksg_mm, abs=0.006 * max(1, ksg_mm))  # quoted to 2-3 digits
    assert bir == pytest.approx(bir_mm, abs=0.006 * max(1, bir_mm))


def test_seed_example_bending_and_dechanneling():
    # physics.md: C ≈ 0.43–0.50, L_d(0) ≈ 6.7 mm, L_d(C) ≈ 1.7–2.2 mm ≥ 1.4 mm (diamond, 13.6 GeV)
    C = ch.bending_parameter(13.6e9, 1.27e-8, 1.4e-3, 7.5e9)
    assert 0.43 <= C <= 0.50
    ld0 = ch.dechanneling_length_straight(kin.lorentz_factor(13.6e9), 1.26e-8, 0.258e-8, 81.0)
    assert ld0 * 10 == pytest.approx(6.7, abs=0.05)
    ld = ch.dechanneling_length(ld0, C)
    assert 0.17 <= ld <= 0.22 and ld >= 0.14


@given(S.period, S.amplitude, S.energy, S.potential_depth)
def test_bending_parameter_harmonic_identity(l, A, E, U0):
    # In a harmonic well U'max = 4 U0 / d, so C = (q/q_ch)² · d/(2A)   (physics.md)
    d = 2e-8
    gamma = kin.lorentz_factor(E)
    q = kin.undulator_parameter(A, l, gamma)
    q_ch = ch.channeling_limit(gamma, U0)
    C = ch.bending_parameter(gamma * 510998.95, A, l, 4 * U0 / d)
    np.testing.assert_allclose(C, (q / q_ch) ** 2 * d / (2 * A), rtol=1e-9)


def test_dechanneling_length_zero_beyond_critical_bend_and_nan_passthrough():
    res = ch.dechanneling_length(np.array([1.0, 1.0, 1.0, np.nan]), np.array([0.5, 1.0, 2.0, 0.1]))
    np.testing.assert_array_equal(res[:3], [0.25, 0.0, 0.0])
    assert np.isnan(res[3])
    assert np.isnan(ch.dechanneling_length(1.0, np.nan))


def test_effective_length_and_optimum():
    La, Ld = 0.06, 0.2
    Ls = np.linspace(0.001, 1.0, 20001)
    Leff = ch.effective_length(Ls, Ld, La)
    assert Ls[np.argmax(Leff)] == pytest.approx(ch.optimal_thickness(Ld, La), abs=1e-4)
    # no losses: L_eff -> L ; equal lengths: the analytic limit L e^{-L/L_a}
    assert ch.effective_length(0.1, 1e12, 1e12) == pytest.approx(0.1, rel=1e-9)
    assert ch.effective_length(0.1, 0.05, 0.05) == pytest.approx(0.1 * np.exp(-2), rel=1e-6)
    assert ch.effective_length(0.1, 0.05, 0.05 * (1 + 1e-7)) == pytest.approx(0.1 * np.exp(-2), rel=1e-5)


def test_transmission_limits():
    assert ch.transmission(1e-9, 0.06) == pytest.approx(1.0, rel=1e-6)
    assert ch.transmission(10.0, 0.06) == pytest.approx(0.006, rel=1e-6)


def test_channeling_limit_and_lindhard_angle():
    gamma = kin.lorentz_factor(13.6e9)
    assert ch.channeling_limit(gamma, 24.9) == pytest.approx(
        ch.lindhard_angle(gamma, 24.9) * gamma, rel=1e-12
    )
    assert ch.channeling(1.5, 1.61) is True
    assert ch.channeling(1.7, 1.61) is False


@pytest.mark.parametrize(
    "L, Ld, La", [(0.3, 10.0, 1e-4), (0.3, 1e-4, 10.0), (5.0, 0.2, 1e-3), (0.14, 0.19, 0.06)]
)
def test_effective_length_never_overflows(L, Ld, La):
    from decimal import Decimal, getcontext

    getcontext().prec = 60
    d = [Decimal(x) for x in (L, Ld, La)]
    exact = d[1] * d[2] / (d[2] - d[1]) * ((-d[0] / d[2]).exp() - (-d[0] / d[1]).exp())
    assert ch.effective_length(L, Ld, La) == pytest.approx(float(exact), rel=1e-12)
