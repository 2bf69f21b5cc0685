"""Coherent radiation of an FEL-modulated Gaussian positron bunch, Sec. IV of [G24v1].

Lengths in cm, angular frequencies in rad/s.
"""

import numpy as np

from .. import constants as k
from ._util import asfloat, out

SQRT_PI = float(np.sqrt(np.pi))


def form_factor(omega, omega_r, sigma_z, bunching):
    r"""Longitudinal form factor of a Gaussian bunch density-modulated at ωr with depth b.

    .. math:: F_Z = \frac{b^2}{4}\exp\left[-\left(\frac{\omega_r\sigma_Z}{c}\right)^2
              \left(\frac{\omega-\omega_r}{\omega_r}\right)^2\right]

    Parameters
    ----------
    omega, omega_r : array_like
        ω, ωr [rad/s].
    sigma_z : array_like
        rms bunch length σZ [cm].
    bunching : array_like
        Modulation depth b [1].

    Returns
    -------
    F_Z : ndarray or float
        [1].

    Source: [G24v1] Eq. (20).
    Validity: ω near ωr (other harmonics of the modulation neglected).

    >>> form_factor(1.0, 1.0, 1e-3, 0.5)
    0.0625
    """
    b = asfloat(bunching)
    omega_r = asfloat(omega_r)
    x = omega_r * asfloat(sigma_z) / k.c * (asfloat(omega) - omega_r) / omega_r
    return out(0.25 * b * b * np.exp(-x * x))


def n_coh(q, thickness, n_positrons, gamma, sigma_z, lambda_r, bunching):
    r"""Coherent photons per bunch per unit ϑ² at zero angle, at the resonance (tuned: ωr = ω−).

    .. math::
        N_{coh} = \frac{\sqrt{\pi}\,\alpha}{2\sigma_Z\lambda_r}
        \left(\frac{q L N_b}{4\gamma}\right)^2 b^2

    Parameters
    ----------
    q : array_like
        Undulator parameter [1].
    thickness : array_like
        Radiating length L [cm].
    n_positrons : array_like
        Nb [1].
    gamma : array_like
        γ [1].
    sigma_z : array_like
        σZ [cm].
    lambda_r : array_like
        λr = λ− (Eq. 13) [cm].
    bunching : array_like
        b [1].

    Returns
    -------
    n_coh : ndarray or float
        [1/rad²] per bunch: Eq. (14) is d²N/(dω dϑ²) at ϑ = 0, so this is a density in ϑ², not
        a photon count (see cusweep.formulary.angular for the counts).

    Source: [G24v1] Eq. (22).
    Validity: λr ≪ πσZ/n (see :func:`coherent_regime`), γ ≫ γth, channeling.

    >>> f"{n_coh(1.517, 0.14, 1.56e9, 26614.9, 9e-4, 1.5208e-8, 1.0):.3e}"
    '4.576e+15'
    """
    x = asfloat(q) * asfloat(thickness) * asfloat(n_positrons) / (4.0 * asfloat(gamma))
    b = asfloat(bunching)
    # grouped so that only the last product spans the b axis (one pass over the largest array)
    return out((SQRT_PI * k.alpha / (2.0 * asfloat(sigma_z) * asfloat(lambda_r)) * (x * x)) * (b * b))


def n_incoh(q, thickness, n_positrons, gamma, sigma_z, lambda_r):
    r"""Incoherent photons per bunch per unit ϑ² at zero angle, in the coherent bandwidth.

    .. math:: N_{incoh} = \frac{\alpha N_b}{\sigma_Z\lambda_r}\left(\frac{q L}{2\gamma}\right)^2

    Parameters
    ----------
    q, thickness, n_positrons, gamma, sigma_z, lambda_r : array_like
        As :func:`n_coh`.

    Returns
    -------
    n_incoh : ndarray or float
        [1/rad²] per bunch: Eq. (14) is d²N/(dω dϑ²) at ϑ = 0, so this is a density in ϑ², not
        a photon count (see cusweep.formulary.angular for the counts).

    Source: [G24v1] Eq. (23).
    Validity: as :func:`n_coh`.

    >>> f"{n_incoh(1.517, 0.14, 1.56e9, 26614.9, 9e-4, 1.5208e-8):.3e}"
    '1.324e+07'
    """
    x = asfloat(q) * asfloat(thickness) / (2.0 * asfloat(gamma))
    return out(k.alpha * asfloat(n_positrons) / (asfloat(sigma_z) * asfloat(lambda_r)) * x * x)


def coherence_gain(n_positrons, bunching):
    r"""Ratio of coherent to incoherent photons in the coherent bandwidth.

    .. math:: K = \frac{\sqrt{\pi}}{8} N_b b^2

    Parameters
    ----------
    n_positrons : array_like
        Nb [1].
    bunching : array_like
        b [1].

    Returns
    -------
    K : ndarray or float
        [1].

    Source: [G24v1] Eq. (24); the paper's typesetting reads like √(π/8) N_b b²; Eq. (22)/(23)
    give √π/8 (erratum).
    Validity: as :func:`n_coh`.

    >>> f"{coherence_gain(1.56e9, 1.0):.3e}"
    '3.456e+08'
    """
    b = asfloat(bunching)
    return out(SQRT_PI / 8.0 * asfloat(n_positrons) * b * b)


def linewidth(lambda_r, sigma_z):
    r"""Relative energy spread of the coherent line.

    .. math:: \delta_{coh} = \lambda_r/(2\pi\sigma_Z)

    Parameters
    ----------
    lambda_r : array_like
        [cm].
    sigma_z : array_like
        [cm].

    Returns
    -------
    delta_coh : ndarray or float
        [1]; the full relative width of F_Z is 2Δω/ωr = 2δcoh.

    Source: [G24v1] Sec. IV, below Eq. (22).
    Validity: coherent regime.

    >>> f"{linewidth(1.5208e-8, 9e-4):.3e}"
    '2.689e-06'
    """
    return out(asfloat(lambda_r) / (2.0 * np.pi * asfloat(sigma_z)))


def coherent_regime(lambda_r, sigma_z, n):
    r"""True where the form-factor line is narrower than the CU line (validity of Eq. 22).

    .. math:: \lambda_r < \pi\sigma_Z/n

    Source: [G24v1] Sec. IV (λr ≪ πσZ/n; implemented as the strict inequality <).

    >>> coherent_regime(1.5e-8, 9e-4, 100.0)
    True
    """
    return out(asfloat(lambda_r) < np.pi * asfloat(sigma_z) / asfloat(n))


def n_coh_detuned(dn_domega_r, n_positrons, sigma_z, bunching):
    r"""Coherent photons per bunch per unit ϑ² at zero angle, the bunch modulated at any ωr.

    .. math:: N_{coh} = \frac{dN}{d\omega}(\omega_r)\,\frac{b^2}{4}N_b^2\,\frac{\sqrt{\pi}\,c}{\sigma_Z}

    (Eq. 21 integrated over ω, with the spectrum of Eq. 14 taken at ωr.) Equals Eq. (22) at ωr = ω−.

    Parameters
    ----------
    dn_domega_r : array_like
        Eq. (14) at ωr [s/rad].
    n_positrons, sigma_z, bunching : array_like
        Nb [1], σZ [cm], b [1].

    Returns
    -------
    n_coh : ndarray or float
        [1/rad²] per bunch: Eq. (14) is d²N/(dω dϑ²) at ϑ = 0, so this is a density in ϑ², not
        a photon count (see cusweep.formulary.angular for the counts).

    Source: [G24v1] Eqs. (14), (20), (21).
    Validity: the form factor narrower than the CU line (coherent regime).

    >>> n_coh_detuned(0.0, 1e9, 1e-3, 1.0)
    0.0
    """
    b = asfloat(bunching)
    nb = asfloat(n_positrons)
    return out((asfloat(dn_domega_r) * (0.25 * SQRT_PI * k.c) * (nb * nb) / asfloat(sigma_z)) * (b * b))


def n_incoh_detuned(dn_domega_r, n_positrons, sigma_z):
    r"""Incoherent photons per bunch per unit ϑ² at zero angle, in the coherent bandwidth at any ωr.

    .. math:: N_{incoh} = N_b\,\frac{dN}{d\omega}(\omega_r)\,\frac{2c}{\sigma_Z}

    (the single-positron spectrum of Eq. 14 at ωr times the bandwidth of Eq. 23.) Equals Eq. (23) at
    ωr = ω− for γ ≫ γth, and makes N_coh/N_incoh = √π Nb b²/8 at every detuning.

    Parameters
    ----------
    dn_domega_r : array_like
        Eq. (14) at ωr [s/rad].
    n_positrons, sigma_z : array_like
        Nb [1], σZ [cm].

    Returns
    -------
    n_incoh : ndarray or float
        [1/rad²] per bunch.

    Source: [G24v1] Eqs. (14), (16), (23).
    Validity: the coherent regime (the bandwidth is that of the form factor).

    >>> n_incoh_detuned(0.0, 1e9, 1e-3)
    0.0
    """
    return out(asfloat(n_positrons) * asfloat(dn_domega_r) * (2.0 * k.c) / asfloat(sigma_z))
