"""Zero-angle spectrum of one channeled positron in the CU, Eqs. (14)-(15) of [G24v1].

The paper derives Eqs. (14)-(15) for γ ≫ γth, so the ω∓ used here are the Eq. (13) approximations
(``kinematics.omega_minus_approx`` / ``omega_plus_approx``), as written in the paper.
"""

import numpy as np

from .. import constants as k
from ._util import asfloat, out


def n_periods(thickness, period):
    r"""Number of CU periods on the radiating length.

    .. math:: n = L / l

    Parameters
    ----------
    thickness : array_like
        Radiating length L [cm].
    period : array_like
        l [cm].

    Returns
    -------
    n : ndarray or float
        [1] (not rounded).

    Source: [G24v1] Sec. II (L = nl); Sec. V prints n = 102 for L = 1.4 mm, l = 14 µm: the
    ratio is 100 (erratum).
    Validity: any.

    >>> round(n_periods(0.14, 1.4e-3), 12)
    100.0
    """
    return out(asfloat(thickness) / asfloat(period))


def sinc_argument(omega, omega_minus, omega_plus, n):
    r"""Argument of the diffraction sine at zero angle.

    .. math:: z = \pi n (1 - \omega_-/\omega)(1 - \omega/\omega_+)

    Source: [G24v1] Eq. (14). Validity: γ ≫ γth (ω∓ of Eq. 13).

    >>> sinc_argument(2.0, 2.0, 10.0, 50)
    0.0
    """
    omega = asfloat(omega)
    return out(
        np.pi * asfloat(n) * (1.0 - asfloat(omega_minus) / omega) * (1.0 - omega / asfloat(omega_plus))
    )


def spectral_density(omega, q, Q, n, omega_cu, omega_minus, omega_plus):
    r"""Photons per positron per unit angular frequency and per unit ϑ² at zero angle.

    .. math::
        \frac{dN}{d\omega} = \frac{\pi\alpha}{2Q}(qn)^2\frac{\omega}{\Omega\omega_+}
        \frac{\sin^2 z}{z^2},\qquad
        z = \pi n\left(1-\frac{\omega_-}{\omega}\right)\left(1-\frac{\omega}{\omega_+}\right)

    Parameters
    ----------
    omega : array_like
        ω [rad/s].
    q, Q, n : array_like
        Undulator parameter, resonance factor, number of periods [1].
    omega_cu : array_like
        Ω [rad/s].
    omega_minus, omega_plus : array_like
        ω∓ [rad/s] (Eq. 13 approximations, as in the paper).

    Returns
    -------
    dN_domega : ndarray or float
        [s/rad/rad²] per positron: d²N/(dω dϑ²) at ϑ = 0 (Eq. 12a integrated over φ).

    Source: [G24v1] Eq. (14).
    Validity: γ ≫ γth, n ≫ 1, ϑ = 0, first harmonic.

    >>> spectral_density(2.0, 1.0, 1.5, 10.0, 1.0, 2.0, 8.0) > 0
    True
    """
    z = asfloat(sinc_argument(omega, omega_minus, omega_plus, n))
    sinc = np.sinc(z / np.pi)  # numpy's sinc(x) = sin(πx)/(πx)
    qn = asfloat(q) * asfloat(n)
    return out(
        np.pi
        * k.alpha
        / (2.0 * asfloat(Q))
        * qn
        * qn
        * asfloat(omega)
        / (asfloat(omega_cu) * asfloat(omega_plus))
        * sinc
        * sinc
    )


def soft_line_photons(n, q, period, gamma, lambda_minus):
    r"""Photons per positron per unit ϑ² at zero angle in the soft line (energy ħω−, relative width 1/n).

    .. math:: N_{ph} = \pi\alpha n\left(\frac{q l}{2\gamma\lambda_-}\right)^2

    Parameters
    ----------
    n : array_like
        Number of periods [1].
    q : array_like
        Undulator parameter [1].
    period : array_like
        l [cm].
    gamma : array_like
        γ [1].
    lambda_minus : array_like
        λ− = 2πc/ω− with ω− of Eq. (13) [cm].

    Returns
    -------
    n_soft : ndarray or float
        [1/rad²] per positron (a density in ϑ² at ϑ = 0, not a photon count).

    Source: [G24v1] Eq. (15); the paper prints λ+ where the first form of Eq. (15) gives λ−
    (erratum).
    Validity: γ ≫ γth, n ≤ L_d/l.

    >>> f"{soft_line_photons(100.0, 1.517, 1.4e-3, 26614.9, 1.5208e-8):.2f}"
    '15.78'
    """
    x = asfloat(q) * asfloat(period) / (2.0 * asfloat(gamma) * asfloat(lambda_minus))
    return out(np.pi * k.alpha * asfloat(n) * x * x)
