"""Escape problems: a potential, a start, a stop and the theory's prediction, built together.

``escape_problem`` sets up the standard experiments of the project (science brief 4 and
7.7) so that the CLI, the examples and the comparison layer use the same definitions:

* ``model="chain"``: the chain of ``n_layers`` scalar weights; forward from the origin
  until ``P = w_1...w_n`` first exceeds ``(lam_saddle + lam_min)/2``, backward from the
  balanced learned minimum until ``P`` first drops below ``lam_saddle / 2``. Theory:
  the weight-space Eyring-Kramers time.
* ``model="network"``: a scalar-input, scalar-output network of hidden width ``width``,
  the same starts and levels on ``M``; theory: Eyring-Kramers with the width-h orbit
  factors.
* ``model="reduced"``: the 1D reduced potential in ``b`` (reflected at 0), same levels
  on ``b^n``; theory: the exact 1D mean first-passage time to the level (and Kramers).
* ``model="double_well"``: ``x^4/4 - x^2/2`` from -1 to +1; theory: the exact MFPT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_choice, check_n_layers
from ..theory import eyring_kramers_time, kramers_time, landscape, mfpt_1d, resolve_convention
from ._potentials import Potential, chain, double_well, network, reduced
from ._simulate import Threshold

__all__ = ["EscapeProblem", "escape_problem", "MODELS"]

MODELS = ("chain", "network", "reduced", "double_well")


@dataclass(frozen=True)
class EscapeProblem:
    """What to simulate and what the theory predicts for it."""

    model: str
    direction: str
    potential: Potential
    x0: np.ndarray
    stop: Threshold
    barrier: float           # in the convention's energy units
    config: dict

    def theory_tau(self, temperature):
        """Predicted mean escape time at ``temperature`` (convention units), or None."""
        cfg = self.config
        if self.model in ("chain", "network"):
            out = eyring_kramers_time(cfg["n_layers"], cfg["c"], cfg["gamma"], temperature, cfg["a"],
                                      direction=self.direction, width=cfg.get("width", 1),
                                      convention=cfg["convention"])
            return None if out is None else float(out)
        return self.exact_mfpt(temperature)

    def exact_mfpt(self, temperature):
        """Exact 1D mean first-passage time to the stop level (1D models only)."""
        if self.model == "double_well":
            return mfpt_1d(lambda x: x**4 / 4 - x**2 / 2, -1.0, 1.0, -3.0, temperature)
        if self.model != "reduced":
            return None
        pot = self.potential
        n = self.config["n_layers"]
        b_level = float(self.stop.level) ** (1.0 / n)

        def U(b):
            return pot.energy(np.asarray(b)[..., None])

        if self.direction == "fwd":
            return mfpt_1d(U, 0.0, b_level, 0.0, temperature)
        b0 = float(self.x0[0])
        far = b0
        while U(far) < U(b0) + 60 * temperature:
            far += 0.05 * b0
        return mfpt_1d(U, b0, b_level, far, temperature)

    def kramers_tau(self, temperature):
        cfg = self.config
        if self.model == "double_well":
            return float(2 * np.pi * np.exp(0.25 / temperature) / np.sqrt(2.0 * 1.0))
        out = kramers_time(cfg["n_layers"], cfg["c"], cfg["gamma"], temperature, cfg["a"],
                           direction=self.direction, convention=cfg["convention"])
        return None if out is None else float(out)


def escape_problem(model="chain", *, n_layers=3, c=1.0, gamma=None, a=1.0, width=1, direction="fwd",
                   convention="canonical") -> EscapeProblem:
    """Build an :class:`EscapeProblem` (see the module docstring for the definitions)."""
    check_choice(model, "model", MODELS)
    check_choice(direction, "direction", ("fwd", "bwd"))
    if model == "double_well":
        if direction != "fwd":
            raise ValueError("direction must be 'fwd' for the symmetric double well")
        return EscapeProblem(model, direction, double_well(), np.array([-1.0]), Threshold(1.0, "up"), 0.25,
                             {"model": model})
    n = check_n_layers(n_layers)
    if gamma is None:
        raise ValueError("gamma must be given for the network models")
    conv = resolve_convention(convention)
    L = landscape(n, c, gamma, a, width=width if model == "network" else 1, convention=conv)
    if L.b_saddle is None:
        raise ValueError(f"no barrier at gamma = {gamma} (phase {L.phase!r}): choose gamma below gamma_sp "
                         f"and n_layers >= 3")
    cfg = {"model": model, "n_layers": n, "c": float(c), "gamma": float(gamma), "a": float(a),
           "convention": conv.name, "direction": direction}
    sign = 1.0 if c >= 0 else -1.0
    if direction == "fwd":
        level, how = 0.5 * (L.lam_saddle + L.lam_min), "up"
        barrier = L.barrier_fwd
    else:
        level, how = 0.5 * L.lam_saddle, "down"
        barrier = L.barrier_bwd
    start_b = 0.0 if direction == "fwd" else L.b_min
    # with c < 0 the learned states have P < 0: mirror the level and its direction
    signed_level = sign * level
    signed_how = how if sign > 0 else ("down" if how == "up" else "up")
    if model == "reduced":
        pot = reduced(n, c, gamma, a, convention=conv)
        x0 = np.array([start_b])
        stop = Threshold(level, how, pot.variables[0] ** n)
    elif model == "chain":
        pot = chain(n, c, gamma, a, convention=conv)
        x0 = np.full(n, start_b)
        x0[0] *= sign
        stop = Threshold(signed_level, signed_how)
    else:
        h = int(width)
        cfg["width"] = h
        pot = network(n, h, [[a]], [[c]], gamma, convention=conv)
        r = np.zeros(h)
        r[0] = 1.0
        mats = [start_b * r] + [start_b * np.outer(r, r)] * (n - 2) + [start_b * r]
        x0 = np.concatenate([m.ravel() for m in mats])
        x0[0] *= sign
        stop = Threshold(signed_level, signed_how)
    return EscapeProblem(model, direction, pot, x0, stop, float(barrier), cfg)
