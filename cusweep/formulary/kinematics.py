"""Kinematics of a positron in a sinusoidal crystalline undulator, and its zero-angle frequencies.

All lengths in cm, angular frequencies in rad/s, energies in eV (CGS inside, as in [G24v1]).
"""

import numpy as np

from .. import constants as k
from ._util import asfloat, out


def lorentz_factor(energy):
    r"""Lorentz factor of a positron of total energy E.

    .. math:: \gamma = E / mc^2

    Parameters
    ----------
    energy : array_like
        Total energy E [eV].

    Returns
    -------
    gamma : ndarray or float
        Lorentz factor γ [1]; NaN in gives NaN out.

    Source: [G24v1] Sec. V (γ = 2.66×10⁴ at 13.6 GeV).
    Validity: any E > 0.

    >>> round(float(lorentz_factor(13.6e9)))
    26615
    """
    return out(asfloat(energy) / k.mc2)


def omega_cu(period):
    r"""Angular frequency of the CU oscillation seen by the positron, with β∥ ≈ 1.

    .. math:: \Omega = 2\pi c / l

    Parameters
    ----------
    period : array_like
        CU period l [cm].

    Returns
    -------
    omega_cu : ndarray or float
        Ω [rad/s].

    Source: [G24v1] Eq. (1) with β∥ → 1, Eq. (12b).
    Validity: ultrarelativistic positrons (γ ≫ 1).

    >>> f"{omega_cu(1.4e-3):.4e}"
    '1.3455e+14'
    """
    return out(2.0 * np.pi * k.c / asfloat(period))


def undulator_parameter(amplitude, period, gamma):
    r"""Undulator parameter of a sinusoidal CU.

    .. math:: q = \gamma\,\theta_{max} = 2\pi A \gamma / l

    Parameters
    ----------
    amplitude : array_like
        CU amplitude A [cm].
    period : array_like
        CU period l [cm].
    gamma : array_like
        Lorentz factor γ [1].

    Returns
    -------
    q : ndarray or float
        Undulator parameter q [1].

    Source: [G24v1] Sec. III, q = Θmax γ with Θmax = 2πA/l.
    Validity: any.

    >>> f"{undulator_parameter(1.27e-8, 1.4e-3, 26614.9):.4f}"
    '1.5170'
    """
    return out(2.0 * np.pi * asfloat(amplitude) * asfloat(gamma) / asfloat(period))


def resonance_factor(q):
    r"""The factor Q that lowers the longitudinal Lorentz factor, γ∥ = γ/√Q.

    .. math:: Q = 1 + q^2/2

    Parameters
    ----------
    q : array_like
        Undulator parameter [1].

    Returns
    -------
    Q : ndarray or float
        [1].

    Source: [G24v1] Eq. (12b).
    Validity: any.

    >>> resonance_factor(2.0)
    3.0
    """
    q = asfloat(q)
    return out(1.0 + 0.5 * q * q)


def plasma_frequency(plasma_energy):
    r"""Plasma angular frequency from the plasma energy.

    .. math:: \omega_p = \hbar\omega_p / \hbar

    Parameters
    ----------
    plasma_energy : array_like
        ħωp [eV].

    Returns
    -------
    omega_p : ndarray or float
        ωp [rad/s].

    Source: [G24v1] Eq. (11).
    Validity: any.

    >>> f"{plasma_frequency(38.0):.4e}"
    '5.7732e+16'
    """
    return out(asfloat(plasma_energy) / k.hbar)


def plasma_wavelength(plasma_energy):
    r"""Plasma wavelength.

    .. math:: \lambda_p = 2\pi c/\omega_p

    Parameters
    ----------
    plasma_energy : array_like
        ħωp [eV].

    Returns
    -------
    lambda_p : ndarray or float
        λp [cm].

    Source: [G24v1] Eq. (12b); Sec. V quotes λp = 3.26×10⁻⁶ cm for ħωp = 38 eV.
    Validity: any.

    >>> f"{plasma_wavelength(38.0):.3e}"
    '3.263e-06'
    """
    return out(2.0 * np.pi * k.hbar_c / asfloat(plasma_energy))


def threshold_gamma(period, Q, plasma_energy):
    r"""Threshold Lorentz factor for zero-angle radiation in the polarised medium.

    .. math:: \gamma_{th} = \sqrt{Q}\,\omega_p/\Omega = l\sqrt{Q}/\lambda_p

    Parameters
    ----------
    period : array_like
        CU period l [cm].
    Q : array_like
        Resonance factor Q = 1 + q²/2 [1].
    plasma_energy : array_like
        ħωp [eV].

    Returns
    -------
    gamma_th : ndarray or float
        γth [1].

    Source: [G24v1] Eq. (12b).
    Validity: radiation at ϑ = 0 exists only for γ > γth.

    >>> round(float(threshold_gamma(1.4e-3, 2.1507, 38.0)))
    629
    """
    return out(asfloat(period) * np.sqrt(asfloat(Q)) / plasma_wavelength(plasma_energy))


def above_threshold(gamma, gamma_th):
    """True where γ > γth (zero-angle radiation exists). Source: [G24v1] Eq. (12b)."""
    return out(asfloat(gamma) > asfloat(gamma_th))


def _edges(omega_cu, gamma, Q, gamma_th, sign):
    gamma = asfloat(gamma)
    gamma_th = asfloat(gamma_th)
    ratio = gamma_th / gamma
    x = ratio * ratio
    with np.errstate(invalid="ignore", divide="ignore"):
        # 1 − x = (γ − γth)(γ + γth)/γ²: accurate also just above threshold; NaN for γ ≤ γth (and NaN in)
        arg = (gamma - gamma_th) * (gamma + gamma_th) / (gamma * gamma)
        root = np.sqrt(np.where(gamma > gamma_th, arg, np.nan))
        scale = asfloat(omega_cu) * gamma * gamma / asfloat(Q)
        if sign < 0:  # 1 − √(1 − x) = x/(1 + √(1 − x)): no cancellation for γ ≫ γth
            return out(scale * x / (1.0 + root))
        return out(scale * (1.0 + root))


def omega_minus(omega_cu, gamma, Q, gamma_th):
    r"""Exact soft edge of the zero-angle spectrum.

    .. math:: \omega_- = \frac{\Omega\gamma^2}{Q}\left(1 - \sqrt{1 - (\gamma_{th}/\gamma)^2}\right)

    Parameters
    ----------
    omega_cu : array_like
        Ω [rad/s].
    gamma : array_like
        γ [1].
    Q : array_like
        Q [1].
    gamma_th : array_like
        γth [1].

    Returns
    -------
    omega_minus : ndarray or float
        ω− [rad/s]; NaN where γ ≤ γth (no zero-angle radiation).

    Source: [G24v1] Eq. (12b), evaluated as Ωγ²/Q · x/(1 + √(1 − x)), x = (γth/γ)², which is exact
    algebra and keeps full precision for γ ≫ γth (no cancellation in 1 − √(1 − x)).
    Validity: γ > γth.

    >>> import numpy as np
    >>> bool(np.isnan(omega_minus(1e14, 10.0, 2.0, 20.0)))
    True
    """
    return _edges(omega_cu, gamma, Q, gamma_th, -1.0)


def omega_plus(omega_cu, gamma, Q, gamma_th):
    r"""Exact hard edge of the zero-angle spectrum.

    .. math:: \omega_+ = \frac{\Omega\gamma^2}{Q}\left(1 + \sqrt{1 - (\gamma_{th}/\gamma)^2}\right)

    Parameters
    ----------
    omega_cu, gamma, Q, gamma_th : array_like
        Ω [rad/s], γ, Q, γth [1].

    Returns
    -------
    omega_plus : ndarray or float
        ω+ [rad/s]; NaN where γ ≤ γth.

    Source: [G24v1] Eq. (12b).
    Validity: γ > γth.

    >>> f"{omega_plus(1.0, 2.0, 1.0, 0.0):.1f}"
    '8.0'
    """
    return _edges(omega_cu, gamma, Q, gamma_th, +1.0)


def omega_minus_approx(omega_cu, plasma_energy):
    r"""Soft edge for γ ≫ γth, independent of γ.

    .. math:: \omega_- \approx \omega_p^2 / (2\Omega)

    Parameters
    ----------
    omega_cu : array_like
        Ω [rad/s].
    plasma_energy : array_like
        ħωp [eV].

    Returns
    -------
    omega_minus_approx : ndarray or float
        ω− [rad/s].

    Source: [G24v1] Eq. (13).
    Validity: γ ≫ γth (relative error ~(γth/γ)²/4).

    >>> from cusweep import constants as k
    >>> f"{k.hbar * omega_minus_approx(omega_cu(1.4e-3), 38.0):.1f}"
    '8152.7'
    """
    wp = plasma_frequency(plasma_energy)
    return out(wp * wp / (2.0 * asfloat(omega_cu)))


def omega_plus_approx(omega_cu, gamma, Q):
    r"""Hard edge for γ ≫ γth.

    .. math:: \omega_+ \approx 2\Omega\gamma^2/Q

    Parameters
    ----------
    omega_cu, gamma, Q : array_like
        Ω [rad/s], γ [1], Q [1].

    Returns
    -------
    omega_plus_approx : ndarray or float
        ω+ [rad/s].

    Source: [G24v1] Eq. (13).
    Validity: γ ≫ γth.

    >>> omega_plus_approx(1.0, 3.0, 2.0)
    9.0
    """
    gamma = asfloat(gamma)
    return out(2.0 * asfloat(omega_cu) * gamma * gamma / asfloat(Q))


def resonant_period(photon_energy, plasma_energy):
    r"""CU period whose soft edge (Eq. 13) lies at a given photon energy.

    .. math:: l = 2\lambda_p^2/\lambda_r

    Parameters
    ----------
    photon_energy : array_like
        ħωr [eV].
    plasma_energy : array_like
        ħωp [eV].

    Returns
    -------
    period : ndarray or float
        l [cm].

    Source: [G24v1] Sec. V (λr = 2λp²/l), from Eq. (13).
    Validity: γ ≫ γth.

    >>> f"{resonant_period(8300.0, 38.0) * 1e4:.2f}"
    '14.25'
    """
    lam_p = plasma_wavelength(plasma_energy)
    lam_r = 2.0 * np.pi * k.hbar_c / asfloat(photon_energy)
    return out(2.0 * lam_p * lam_p / lam_r)


def wavelength(omega):
    r"""Wavelength of an angular frequency, λ = 2πc/ω [cm]; Source: definition.

    >>> f"{wavelength(2 * 3.141592653589793 * 2.99792458e10):.1f}"
    '1.0'
    """
    return out(2.0 * np.pi * k.c / asfloat(omega))
