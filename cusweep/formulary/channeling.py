"""Planar channeling of positrons in a periodically bent crystal: Lindhard limit, bending parameter,
dechanneling length, and photon absorption (models beyond [G24v1], each labelled with its source).

Lengths in cm, energies in eV, fields in eV/cm (CGS inside).
"""

import numpy as np

from .. import constants as k
from ._util import asfloat, out

#: source strings stored with the variables computed here
SOURCE_BENDING = (
    "model beyond [G24v1]: C = 4π²εA/(U'max l²), Korol, Solov'yov, Greiner, "
    "Channeling and Radiation in Periodically Bent Crystals (Springer 2013), Sec. 2"
)
SOURCE_DECHANNELING = {
    "ksg": (
        "model beyond [G24v1]: Korol-Solov'yov-Greiner L_d(0) = (256/9π²)(a_TF/r0)(d/Λ)γ, "
        "Λ = ln(√(2γ)mc²/I) − 23/24; bent: L_d(C) = (1−C)² L_d(0) (Biryukov-Chesnokov-Kotov); "
        "uncertainty ≈ ±40% (the two published forms differ by ≈1.4×)"
    ),
    "biryukov": (
        "model beyond [G24v1]: Biryukov-Chesnokov-Kotov L_D = (256/9π²) pv/(ln(2mc²γ/I) − 1) "
        "a_TF d/(r_e mc²) (as in xcoll); bent: L_d(C) = (1−C)² L_d(0); uncertainty ≈ ±40%"
    ),
}


def channeling_limit(gamma, potential_depth):
    r"""Largest undulator parameter that keeps positrons channeled.

    .. math:: q_{ch} = \Theta_L\gamma = \sqrt{2\nu\gamma},\qquad \nu = U_0/mc^2

    Parameters
    ----------
    gamma : array_like
        Lorentz factor γ [1].
    potential_depth : array_like
        Planar potential depth U0 [eV].

    Returns
    -------
    q_ch : ndarray or float
        [1].

    Source: [G24v1] Sec. III (q < q_ch); Sec. V prints 1.62, the formula gives 1.610 (erratum).
    Validity: harmonic planar potential, straight-crystal Lindhard angle.

    >>> f"{channeling_limit(26614.9, 24.9):.3f}"
    '1.611'
    """
    return out(np.sqrt(2.0 * asfloat(potential_depth) / k.mc2 * asfloat(gamma)))


def lindhard_angle(gamma, potential_depth):
    r"""Lindhard critical angle for planar channeling.

    .. math:: \Theta_L = \sqrt{2\nu/\gamma}

    Parameters
    ----------
    gamma : array_like
        γ [1].
    potential_depth : array_like
        U0 [eV].

    Returns
    -------
    theta_l : ndarray or float
        ΘL [rad].

    Source: [G24v1] Sec. III.
    Validity: planar channeling of positrons.

    >>> f"{lindhard_angle(26614.9, 24.9):.3e}"
    '6.051e-05'
    """
    return out(np.sqrt(2.0 * asfloat(potential_depth) / k.mc2 / asfloat(gamma)))


def channeling(q, q_ch):
    """True where q < q_ch (the CU keeps the positrons channeled). Source: [G24v1] Sec. III."""
    return out(asfloat(q) < asfloat(q_ch))


def bending_parameter(energy, amplitude, period, max_field):
    r"""Ratio of the centrifugal force at the tightest bend to the maximal planar field.

    .. math:: C = 4\pi^2 \varepsilon A / (U'_{max} l^2)

    Parameters
    ----------
    energy : array_like
        Beam energy ε (≈ pv) [eV].
    amplitude : array_like
        CU amplitude A [cm].
    period : array_like
        CU period l [cm].
    max_field : array_like
        Maximal interplanar field U′max [eV/cm].

    Returns
    -------
    C : ndarray or float
        [1]; channeling in the bent crystal needs C < 1.

    Source: model beyond [G24v1] (Korol, Solov'yov, Greiner 2013).
    Validity: sinusoidal bend, R_min = l²/(4π²A).

    >>> f"{bending_parameter(13.6e9, 1.27e-8, 1.4e-3, 7.5e9):.3f}"
    '0.464'
    """
    period = asfloat(period)
    return out(4.0 * np.pi**2 * asfloat(energy) * asfloat(amplitude) / (asfloat(max_field) * period * period))


def dechanneling_length_straight(
    gamma, interplanar_spacing, thomas_fermi_radius, mean_excitation_energy, model="ksg"
):
    r"""Dechanneling length of positrons in a straight crystal.

    .. math::
        L_d(0) = \frac{256}{9\pi^2}\frac{a_{TF}}{r_0}\frac{d}{\Lambda}\gamma,\quad
        \Lambda = \ln\frac{\sqrt{2\gamma}\,mc^2}{I} - \frac{23}{24}\quad(\text{"ksg"})

        L_d(0) = \frac{256}{9\pi^2}\frac{pv}{\ln(2mc^2\gamma/I) - 1}\frac{a_{TF} d}{r_e mc^2}
        \quad(\text{"biryukov"})

    Parameters
    ----------
    gamma : array_like
        γ [1].
    interplanar_spacing : array_like
        d [cm].
    thomas_fermi_radius : array_like
        a_TF [cm].
    mean_excitation_energy : array_like
        I [eV].
    model : {"ksg", "biryukov"}
        Which published form.

    Returns
    -------
    L_d0 : ndarray or float
        [cm]; NaN where an input is NaN.

    Source: model beyond [G24v1]; see ``SOURCE_DECHANNELING``.
    Validity: positrons, γ ≫ 1; the two forms differ by ≈1.4× (logarithm).

    >>> f"{dechanneling_length_straight(1956.95, 1.92e-8, 0.194e-8, 173.0) * 10:.2f}"
    '0.67'
    """
    gamma = asfloat(gamma)
    pre = 256.0 / (9.0 * np.pi**2)
    a_tf = asfloat(thomas_fermi_radius)
    d = asfloat(interplanar_spacing)
    I = asfloat(mean_excitation_energy)
    if model == "ksg":
        lam = np.log(np.sqrt(2.0 * gamma) * k.mc2 / I) - 23.0 / 24.0
        return out(pre * a_tf / k.r0 * d / lam * gamma)
    if model == "biryukov":
        pv = gamma * k.mc2 * (1.0 - 1.0 / (gamma * gamma))  # pv = βpc = E β²
        lam = np.log(2.0 * k.mc2 * gamma / I) - 1.0
        return out(pre * pv / lam * a_tf * d / (k.r0 * k.mc2))
    raise ValueError(f"dechanneling model {model!r}: use 'ksg' or 'biryukov'")


def dechanneling_length(length_straight, C):
    r"""Dechanneling length in the bent crystal.

    .. math:: L_d(C) = (1 - C)^2 L_d(0)\ \ (C < 1),\qquad 0\ \ (C \ge 1)

    Parameters
    ----------
    length_straight : array_like
        L_d(0) [cm].
    C : array_like
        Bending parameter [1].

    Returns
    -------
    L_d : ndarray or float
        [cm]; NaN where an input is NaN.

    Source: Biryukov, Chesnokov, Kotov, Crystal Channeling and its Application at High-Energy
    Accelerators (Springer 1997): (1 − R_c/R)² at R_min, beyond [G24v1].
    Validity: conservative for a sinusoidal bend.

    >>> f"{dechanneling_length(6.687, 0.4639):.2f}"
    '1.92'
    """
    C = asfloat(C)
    one_minus = np.where(C < 1.0, 1.0 - C, 0.0)
    one_minus = np.where(np.isnan(C), np.nan, one_minus)
    return out(asfloat(length_straight) * one_minus * one_minus)


def effective_length(thickness, dechanneling, attenuation):
    r"""Effective radiating length with dechanneling and photon absorption (a simple model).

    Channeled fraction e^(−z/L_d), photon survival e^(−(L−z)/L_a):

    .. math:: L_{eff} = \frac{L_d L_a}{L_a - L_d}\left(e^{-L/L_a} - e^{-L/L_d}\right)

    Parameters
    ----------
    thickness : array_like
        Crystal length L [cm].
    dechanneling : array_like
        L_d [cm].
    attenuation : array_like
        Photon attenuation length L_a [cm].

    Returns
    -------
    L_eff : ndarray or float
        [cm]; the limit L e^(−L/L_a) where L_a = L_d.

    Source: model beyond [G24v1] (cusweep physics notes); uncertainty that of L_d.
    Validity: exponential dechanneling, no rechanneling.

    >>> f"{effective_length(0.14, 1e9, 1e9):.4f}"
    '0.1400'
    """
    L = asfloat(thickness)
    Ld = asfloat(dechanneling)
    La = asfloat(attenuation)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # (e^{-L/La} - e^{-L/Ld}) / (1/Ld - 1/La) = e^{-L lo} (1 - e^{-L (hi - lo)}) / (hi - lo) with
        # lo, hi the smaller and larger of 1/La, 1/Ld: no overflow, accurate also when La ≈ Ld
        a, b = 1.0 / La, 1.0 / Ld
        lo, diff = np.minimum(a, b), np.abs(b - a)
        small = diff * L < 1e-8
        general = np.exp(-L * lo) * -np.expm1(-L * diff) / np.where(small, 1.0, diff)
        limit = L * np.exp(-L * lo)
        res = np.where(small, limit, general)
        res = np.where(np.isnan(a) | np.isnan(b) | np.isnan(L), np.nan, res)
    return out(res)


def optimal_thickness(dechanneling, attenuation):
    r"""Crystal length that maximises the effective length of :func:`effective_length`.

    .. math:: L^* = \frac{L_d L_a}{L_a - L_d}\ln\frac{L_a}{L_d}

    Parameters
    ----------
    dechanneling, attenuation : array_like
        L_d, L_a [cm].

    Returns
    -------
    L_star : ndarray or float
        [cm]; L_d where L_a = L_d; 0 where L_d = 0 (C ≥ 1).

    Source: model beyond [G24v1] (cusweep physics notes).
    Validity: as :func:`effective_length`.

    >>> f"{optimal_thickness(0.2, 0.06):.4f}"
    '0.1032'
    """
    Ld = asfloat(dechanneling)
    La = asfloat(attenuation)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = La / Ld
        res = np.where(np.abs(r - 1.0) < 1e-10, Ld, Ld * La / (La - Ld) * np.log(r))
        res = np.where(Ld == 0.0, 0.0, res)  # the limit L_d ln(L_a/L_d) -> 0: no channeling, no length
    return out(res)


def transmission(thickness, attenuation):
    r"""Mean survival of photons emitted uniformly along the crystal (a simple model).

    .. math:: T = \frac{L_a}{L}\left(1 - e^{-L/L_a}\right)

    Parameters
    ----------
    thickness : array_like
        L [cm].
    attenuation : array_like
        L_a [cm].

    Returns
    -------
    T : ndarray or float
        [1], in (0, 1].

    Source: model beyond [G24v1]; attenuation lengths from xraydb (Elam, Ravel, Sieber 2002).
    Validity: no channeling losses, straight-line photon paths.

    >>> f"{transmission(0.14, 0.06):.3f}"
    '0.387'
    """
    L = asfloat(thickness)
    La = asfloat(attenuation)
    return out(-np.expm1(-L / La) * La / L)
