"""The inverse problem proposed in [G24v1] Sec. V: the modulation depth b from a measurement.

First-order (linear) propagation of independent relative uncertainties.
"""

import numpy as np

from ._util import asfloat, out
from .coherence import SQRT_PI


def bunching_from_yield(measured, n_coh_unit, measured_err=0.0, n_coh_unit_err=0.0):
    r"""Modulation depth from a measured coherent photon number.

    .. math:: b = \sqrt{N_{measured}/N_{coh}(b=1)},\qquad
              \frac{\sigma_b}{b} = \frac12\sqrt{\left(\frac{\sigma_N}{N}\right)^2 +
              \left(\frac{\sigma_{N_1}}{N_1}\right)^2}

    Parameters
    ----------
    measured : array_like
        Measured coherent photons per bunch N [1].
    n_coh_unit : array_like
        Model N_coh at b = 1 for the same design point [1].
    measured_err, n_coh_unit_err : array_like
        Their 1σ absolute uncertainties [1].

    Returns
    -------
    (b, b_err) : tuple of ndarray or float
        [1]; NaN where N < 0 or N1 ≤ 0. b > 1 means the model or measurement is inconsistent. At
        N = 0 the error is 0 for exact inputs and NaN otherwise (√N has no first-order error there).

    Source: [G24v1] Eq. (22) (N_coh ∝ b²) and Sec. V (b from the experiment).
    Validity: coherent regime, incoherent background subtracted.

    >>> b, e = bunching_from_yield(4.58e13, 4.58e15)
    >>> round(float(b), 6)
    0.1
    """
    N = asfloat(measured)
    N1 = asfloat(n_coh_unit)
    with np.errstate(divide="ignore", invalid="ignore"):
        valid = (N >= 0) & (N1 > 0)
        b = np.where(valid, np.sqrt(np.where(valid, N / N1, np.nan)), np.nan)
        rel = 0.5 * np.hypot(asfloat(measured_err) / N, asfloat(n_coh_unit_err) / N1)
        # at N = 0 the first-order error of √N is 0 for exact inputs and undefined (NaN) otherwise
        exact = (asfloat(measured_err) == 0) & (asfloat(n_coh_unit_err) == 0)
        err = np.where(N == 0, np.where(exact, 0.0, np.nan), b * rel)
    return out(b), out(err)


def bunching_from_gain(gain, n_positrons, gain_err=0.0, n_positrons_err=0.0):
    r"""Modulation depth from a measured coherence gain K = N_coh/N_incoh.

    .. math:: b = \sqrt{\frac{8K}{\sqrt{\pi} N_b}},\qquad
              \frac{\sigma_b}{b} = \frac12\sqrt{\left(\frac{\sigma_K}{K}\right)^2 +
              \left(\frac{\sigma_{N_b}}{N_b}\right)^2}

    Parameters
    ----------
    gain : array_like
        Measured K [1].
    n_positrons : array_like
        Nb [1].
    gain_err, n_positrons_err : array_like
        1σ absolute uncertainties.

    Returns
    -------
    (b, b_err) : tuple of ndarray or float
        [1]; NaN where K < 0 or Nb ≤ 0.

    Source: [G24v1] Eq. (24) (with √π/8, see the erratum in coherence.coherence_gain).
    Validity: as Eq. (24).

    >>> b, e = bunching_from_gain(3.456e8 * 0.04, 1.56e9)
    >>> round(float(b), 3)
    0.2
    """
    K = asfloat(gain)
    nb = asfloat(n_positrons)
    with np.errstate(divide="ignore", invalid="ignore"):
        valid = (K >= 0) & (nb > 0)
        b = np.where(valid, np.sqrt(np.where(valid, 8.0 * K / (SQRT_PI * nb), np.nan)), np.nan)
        rel = 0.5 * np.hypot(asfloat(gain_err) / K, asfloat(n_positrons_err) / nb)
        exact = (asfloat(gain_err) == 0) & (asfloat(n_positrons_err) == 0)
        err = np.where(K == 0, np.where(exact, 0.0, np.nan), b * rel)
    return out(b), out(err)
