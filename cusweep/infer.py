"""The paper's proposed measurement (Sec. V): the modulation depth b from a measured coherent photon
number, b = √(N_measured / N_coh(b=1)), or from a measured gain, b = √(K / K(b=1)) (tuned:
K(b=1) = √π Nb/8, so b = √(8K/(√π Nb)), Eq. (24)).

N_coh(b=1) or K(b=1) is evaluated by the model at the design point (from a sweep file or a store point);
the uncertainty of b combines the measurement's 1σ with the relative 1σ of model inputs, propagated by
central finite differences of its logarithm through the model (first order, independent inputs).
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
             "dechanneling_model", "facility")
_FLAG_AXES = ("period", "amplitude", "energy", "sigma_z")


def design_from_flags(items: Sequence[str]) -> Design:
    """A design point given entirely by ``NAME=VALUE`` items (``at`` without a sweep or a store):
    crystal, thickness, n_positrons (or bunch_charge), period, amplitude, energy, sigma_z, optionally
    photon_energy, length_model, dechanneling_model or a facility preset. Validated as a one-point sweep."""
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

    def text(self) -> str:
        lines = [f"b = {self.b:.4g} ± {self.b_err:.2g}  (1 sigma)"]
        where = ", ".join(f"{d} = {format_value(d, v, plain=False)}" for d, v in self.point.items()
                          if d != "bunching")
        label = "N_coh(b=1)" if self.measured == "n_coh" else "K(b=1)"
        lines.append(f"{label} = {self.n_coh_unit:.4g} ± {self.n_coh_unit_err or 0.0:.2g} at {where}")
        shown = {k: v for k, v in self.contributions.items() if v > 0}
        if shown:
            parts = ", ".join(f"{k} {v:.2%}" for k, v in shown.items())
            lines.append(f"contributions to sigma_b/b: {parts}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def infer_b(design: Design, *, measured: float | None = None, gain: float | None = None, error: float = 0.0,
            rel_errors: Mapping[str, float] | None = None) -> Inference:
    """b ± σb from a measured coherent photon number (``measured``) or gain (``gain``) at ``design``."""
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
    return res
