"""The paper's proposed measurement (Sec. V): the modulation depth b from a measured coherent photon
number, b = √(N_measured / N_coh(b=1)), or from a measured gain, b = √(K / K(b=1)) (tuned:
K(b=1) = √π Nb/8, so b = √(8K/(√π Nb)), Eq. (24)).

N_coh(b=1) or K(b=1) is evaluated by the model at the design point (from a sweep file or a store point);
the uncertainty of b combines the measurement's 1σ with the relative 1σ of model inputs, propagated by
central finite differences of its logarithm through the model (first order, independent inputs), and,
with ``samples``, by Monte Carlo: the measurement and the inputs drawn from independent normal
distributions (seeded), b recomputed for each draw. The two are compared: at a resonance the derivative of
sinc² is zero and the linear estimate misses the (second-order) spread, which the Monte Carlo keeps.

N_coh here is the paper's Eq. (22) quantity: photons per bunch per unit ϑ² at zero angle (an on-axis
angular density, ``n_coh``); K is the same ratio for densities and angle-integrated counts (F_R = 1).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import feasibility
from .display import format_value
from .errors import SpecError

if TYPE_CHECKING:
    from .model import Setup

__all__ = ["Inference", "design_from_flags", "design_from_spec", "design_from_store", "infer_b", "n_coh_unit"]

#: model inputs whose relative uncertainty can be propagated (dims/scalars, and crystal parameters)
INPUTS = ("n_positrons", "sigma_z", "thickness", "energy", "period", "amplitude", "photon_energy")
CRYSTAL_INPUTS = ("potential_depth", "plasma_energy", "max_field", "interplanar_spacing")
#: relative step of the finite differences
STEP = 1e-4
#: the linear and Monte Carlo 1σ of b "disagree" when they differ by more than this fraction
MC_TOLERANCE = 0.2


@dataclass
class Design:
    setup: Setup
    point: dict[str, Any]  # every dim of the setup -> value (bunching ignored)
    notes: list[str] = field(default_factory=list)


def design_from_spec(spec: Any, at: Mapping[str, Any] | Sequence[str] = ()) -> Design:
    """The design point of a sweep: every axis single-valued, or picked with ``at`` (nearest value)."""
    import xarray as xr

    from .model import Setup
    from .quantities import COORDS

    setup = Setup.from_spec(spec)
    coords = {d: xr.Variable((d,), np.asarray(spec.coords[d]), attrs={"units": COORDS[d].units})
              for d in spec.dims}
    ds = xr.Dataset(coords=coords)
    return _pick(ds, setup, at, source="sweep")


#: keys of a design point given as NAME=VALUE items (``at``) that are not sweep axes
_FLAG_TOP = ("crystal", "thickness", "n_positrons", "bunch_charge", "photon_energy", "length_model",
             "dechanneling_model", "facility", "sigma_r", "dielectric")
_FLAG_AXES = ("period", "amplitude", "energy", "sigma_z")


def design_from_flags(items: Sequence[str]) -> Design:
    """A design point given entirely by ``NAME=VALUE`` items (``at`` without a sweep or a store):
    crystal, thickness, n_positrons (or bunch_charge), period, amplitude, energy, sigma_z, optionally
    photon_energy, sigma_r, dielectric, length_model, dechanneling_model or a facility preset. Validated as a
    one-point sweep."""
    import json

    from .spec import loads

    top: list[str] = []
    axes: list[str] = []
    for item in items:
        if "=" not in str(item):
            raise SpecError(f"at: {item!r} is not NAME=VALUE; write e.g. period=\"14 um\"")
        k, v = (t.strip() for t in str(item).split("=", 1))
        v = v.strip("\"'")
        if k not in _FLAG_TOP + _FLAG_AXES:
            allowed = ", ".join(_FLAG_TOP + _FLAG_AXES)
            raise SpecError(f"at: {k!r} is not a design input; use {allowed}")
        try:
            literal = json.dumps(float(v)) if k in ("n_positrons",) else json.dumps(v)
        except ValueError:
            literal = json.dumps(v)
        (axes if k in _FLAG_AXES else top).append(f"{k} = {literal}")
    text = "\n".join([*top, "[axes]", *axes, "bunching = 1.0", ""])
    try:
        spec = loads(text, source="at")
    except SpecError as exc:
        msg = str(exc).removeprefix("axes.")
        raise SpecError(f"at: {msg} (without a sweep or a store, at gives the whole design point)") \
            from None
    return design_from_spec(spec)


def design_from_store(ds: Any, at: Mapping[str, Any] | Sequence[str] = ()) -> Design:
    """The design point of a store (pick multi-valued dims with ``at``)."""
    from .stored import setup_of

    return _pick(ds, setup_of(ds), at, source="store")


def _pick(ds: Any, setup: Setup, at: Mapping[str, Any] | Sequence[str], source: str) -> Design:
    from .select import parse_at, scalar

    idx = parse_at(ds, at)
    point: dict[str, Any] = {}
    missing = []
    for d in setup.dims:
        values = np.asarray(ds[d].values)
        if d in idx:
            point[d] = scalar(values[idx[d]])
        elif len(values) == 1 or d == "bunching":
            point[d] = scalar(values[-1])  # bunching is what is inferred: any value will do
        else:
            missing.append(d)
    if missing:
        d = missing[0]
        raise SpecError(f"{source}: {', '.join(missing)} {'has' if len(missing) == 1 else 'have'} several "
                        f"values; pick the design point with at, e.g. at {d}=\"{_example(ds, d)}\"")
    return Design(setup, point)


def _example(ds: Any, d: str) -> str:
    v = np.asarray(ds[d].values)[0]
    return str(v) if isinstance(v, str | np.str_) else format_value(d, float(v))


def model_unit(setup: Setup, point: Mapping[str, Any], target: str = "n_coh") -> float:
    """``target`` (n_coh or coherence_gain) at b = 1 at a design point, by the model."""
    from .best import evaluate_point

    return float(evaluate_point(setup, {**point, "bunching": 1.0}, (target,))[target])


def n_coh_unit(setup: Setup, point: Mapping[str, Any]) -> float:
    """N_coh(b = 1) at a design point (the model's Eq. (22), or its detuned form)."""
    return model_unit(setup, point, "n_coh")


def _perturbed(setup: Setup, point: Mapping[str, Any], name: str, factor: float) -> tuple[Setup, dict]:
    p = dict(point)
    if name in setup.dims:
        p[name] = point[name] * factor
        return setup, p
    if name in CRYSTAL_INPUTS:
        crystals = {k: dataclasses.replace(c, **{name: getattr(c, name) * factor})
                    for k, c in setup.crystals.items()}
        return dataclasses.replace(setup, crystals=crystals), p
    value = setup.scalars.get(name)
    if value is None:
        raise SpecError(f"rel_errors: {name} is not an input of this design (photon_energy is only one when "
                        "the sweep gives it)")
    return dataclasses.replace(setup, scalars={**setup.scalars, name: float(value) * factor}), p


def sensitivity(setup: Setup, point: Mapping[str, Any], name: str, target: str = "n_coh") -> float:
    """∂ ln target(b=1) / ∂ ln x for model input ``name`` (central finite difference); target is
    ``n_coh`` or ``coherence_gain``."""
    up = model_unit(*_perturbed(setup, point, name, 1 + STEP), target)
    down = model_unit(*_perturbed(setup, point, name, 1 - STEP), target)
    if not (up > 0 and down > 0):
        return math.nan
    return (math.log(up) - math.log(down)) / (math.log1p(STEP) - math.log1p(-STEP))


@dataclass
class Inference:
    b: float
    b_err: float
    n_coh_unit: float | None
    n_coh_unit_err: float | None
    contributions: dict[str, float]  # source -> contribution to sigma_b / b
    point: dict[str, Any]
    notes: list[str]
    measured: str = "n_coh"  # what was measured: n_coh or coherence_gain
    samples: int = 0  # Monte Carlo draws (0: linear propagation only)
    b_mc: float | None = None  # median of the Monte Carlo b
    b_mc_err: float | None = None  # half the 16-84 % range of the Monte Carlo b (1 sigma for a normal)
    mc_invalid: float = 0.0  # share of draws with no real b (negative measured value, or N(b=1) <= 0)
    disagree: bool = False  # linear and Monte Carlo 1 sigma differ by more than MC_TOLERANCE

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-safe values in store units (NaN and inf as None)."""
        def safe(v: Any) -> Any:
            if isinstance(v, dict):
                return {str(k): safe(x) for k, x in v.items()}
            if isinstance(v, list | tuple):
                return [safe(x) for x in v]
            if isinstance(v, bool | str) or v is None:
                return v
            if isinstance(v, int | float | np.integer | np.floating):
                return float(v) if math.isfinite(float(v)) else None
            return str(v)

        return {f.name: safe(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def text(self, *, si: bool = False) -> str:
        """b and the design point for people: display units (``si``: store units, m and eV)."""
        lines = [f"b = {self.b:.4g} ± {self.b_err:.2g}  (1 sigma, linear propagation)"]
        if self.samples and self.b_mc is not None and self.b_mc_err is not None:
            lines.append(f"b = {self.b_mc:.4g} ± {self.b_mc_err:.2g}  (Monte Carlo, {self.samples} draws: "
                         f"median, half the 16-84 % range)")
        where = ", ".join(f"{d} = {format_value(d, v, plain=False, si=si, units=_store_units(d))}"
                          for d, v in self.point.items()
                          if d != "bunching")
        label = "K(b=1)"
        if self.measured == "n_coh":
            label = "N_coh(b=1) [1/rad^2, per unit theta^2 at zero angle]"
        lines.append(f"{label} = {self.n_coh_unit:.4g} ± {self.n_coh_unit_err or 0.0:.2g} at {where}")
        shown = {k: v for k, v in self.contributions.items() if v > 0}
        if shown:
            parts = ", ".join(f"{k} {v:.2%}" for k, v in shown.items())
            lines.append(f"contributions to sigma_b/b: {parts}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def infer_b(design: Design, *, measured: float | None = None, gain: float | None = None, error: float = 0.0,
            rel_errors: Mapping[str, float] | None = None, samples: int = 0, seed: int = 0) -> Inference:
    """b ± σb from a measured coherent yield (``measured``: the paper's N_coh, per unit ϑ² at zero angle)
    or gain (``gain``) at ``design``; with ``samples`` > 0 also by Monte Carlo (seeded with ``seed``)."""
    from .best import evaluate_point
    from .formulary import inverse

    if (measured is None) == (gain is None):
        raise SpecError("infer_b: give exactly one of measured and gain")
    rel = dict(rel_errors or {})
    for name, r in rel.items():
        if name not in INPUTS + CRYSTAL_INPUTS:
            allowed = ", ".join(INPUTS + CRYSTAL_INPUTS)
            raise SpecError(f"rel_errors: unknown input {name!r}; use one of {allowed}")
        if not (math.isfinite(r) and r >= 0):
            raise SpecError(f"rel_errors: {name}={r!r}; give a relative 1-sigma >= 0, e.g. {name}=0.05")
    value = measured if measured is not None else gain
    assert value is not None
    if not (math.isfinite(value) and value >= 0):
        raise SpecError(f"infer_b: the measured value {value!r} must be a finite number >= 0")
    if not (math.isfinite(error) and error >= 0):
        raise SpecError(f"error: {error!r}; give the 1-sigma of the measurement (>= 0)")
    if isinstance(samples, bool) or not isinstance(samples, int) or not 0 <= samples <= MAX_SAMPLES:
        raise SpecError(f"samples: {samples!r}; give a whole number of Monte Carlo draws from 0 to "
                        f"{MAX_SAMPLES}, e.g. 2000")
    setup, point = design.setup, design.point
    notes = list(design.notes)
    shown = {**{k: v for k, v in point.items() if k != "bunching"},
             **{k: v for k, v in setup.scalars.items() if v is not None and k not in point}}
    contributions: dict[str, float] = {}
    flags = evaluate_point(setup, {**point, "bunching": 1.0}, (*feasibility.MARGINS, "feasible"))
    if not flags["feasible"]:
        failed = feasibility.failed(flags)
        why = f" ({', '.join(f'{c.name}: {c.text} fails' for c in failed)})" if failed else ""
        notes.append(f"the design point is not feasible{why}: the paper's Eq. (22) does not apply")
    # b² = value / value(b = 1): N_coh ∝ b² (Eq. 22); K ∝ b² (tuned: √π Nb b²/8, Eq. 24; detuned: the
    # ratio of the stored yields), so both measurements invert the same way, through the model
    target = "n_coh" if measured is not None else "coherence_gain"
    unit = model_unit(setup, point, target)
    rel_unit = 0.0
    parts = {}
    for name, r in rel.items():
        s = sensitivity(setup, point, name, target)
        parts[name] = abs(s) * r
        rel_unit = math.hypot(rel_unit, abs(s) * r)
    ignored = [k for k, v in parts.items() if v == 0 and rel[k] > 0]
    if ignored:
        notes.append(f"rel_errors {', '.join(ignored)}: {target} does not depend on it here")
    b, b_err = inverse.bunching_from_yield(value, unit, error, rel_unit * unit)
    if value > 0:
        contributions = {"measurement": 0.5 * error / value, **{k: 0.5 * v for k, v in parts.items()}}
    res = Inference(float(b), float(b_err), unit, rel_unit * unit, contributions, shown, notes, target)
    if math.isfinite(res.b) and res.b > 1:
        res.notes.append("b > 1: the measurement and the model are inconsistent (b is at most 1)")
    if samples:
        _monte_carlo(res, setup, point, value, error, rel, samples, seed)
    return res


#: most Monte Carlo draws (each is one model evaluation)
MAX_SAMPLES = 1_000_000


def _monte_carlo(res: Inference, setup: Setup, point: Mapping[str, Any], value: float, error: float,
                 rel: Mapping[str, float], samples: int, seed: int) -> None:
    """Fill the Monte Carlo fields of ``res``: the measurement and each input with a relative 1σ drawn
    from independent normals, b = √(measured / model(b=1)) for every draw."""
    rng = np.random.default_rng(seed)
    target = res.measured
    meas = rng.normal(value, error, samples) if error > 0 else np.full(samples, value)
    factors = {name: rng.normal(1.0, r, samples) for name, r in rel.items() if r > 0}
    units = np.empty(samples)
    for i in range(samples):
        s, p = setup, dict(point)
        for name, f in factors.items():
            s, p = _perturbed(s, p, name, float(f[i]))
        units[i] = model_unit(s, p, target) if factors or i == 0 else units[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = meas / units
    ok = np.isfinite(ratio) & (ratio >= 0) & (units > 0)
    res.samples = samples
    res.mc_invalid = float(1.0 - ok.mean())
    if not ok.any():
        res.notes.append("Monte Carlo: no draw gives a real b (measured value or N(b=1) not positive)")
        return
    bs = np.sqrt(ratio[ok])
    lo, med, hi = np.percentile(bs, [15.865525393145708, 50.0, 84.13447460685429])
    res.b_mc, res.b_mc_err = float(med), float(0.5 * (hi - lo))
    if res.mc_invalid > 0:
        res.notes.append(f"Monte Carlo: {res.mc_invalid:.1%} of the draws give no real b (left out)")
    scale = max(res.b_err, res.b_mc_err)
    res.disagree = bool(scale > 0 and abs(res.b_mc_err - res.b_err) > MC_TOLERANCE * scale)
    if res.disagree:
        res.notes.append(
            f"the linear and Monte Carlo 1 sigma disagree ({res.b_err:.2g} vs {res.b_mc_err:.2g}): the model "
            "is not linear over the inputs' uncertainties here (at a resonance the derivative of sinc^2 is "
            "zero, so the linear estimate misses the spread); quote the Monte Carlo")


def _store_units(name: str) -> str:
    """The store unit of a dim or input (m, eV, 1): what ``--si`` shows."""
    from .quantities import COORDS

    return COORDS[name].units if name in COORDS else "1"
