"""Escape problems: a potential, a start, a stop and the theory's prediction, built together.

``escape_problem`` sets up the standard experiments of the project (docs/langevin.md)
so that the CLI, the examples and the comparison layer use the same definitions:

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

SGD-like noise (:meth:`EscapeProblem.sgd_noise`, :meth:`EscapeProblem.sgd_theory`) needs
the end-to-end map, so only ``chain`` and ``network`` support it. Its covariance is rank one
along ``grad M`` and, at a balanced aligned start, points along the ray through ``x0``: the
trajectory stays on that ray, and escape is the 1D Ito diffusion of the balanced magnitude
``b``, ``db = -U'(b)/n dt + sqrt(2 D(b)) dW`` with ``D(b) = (lr f / B) 2 kappa^2 K(b^n) b^(2n-2)``,
``K(P) = a E[r^2] + E[r x]^2`` the residual moment (:func:`phasetools.theory.gradient_noise_kernel`)
and ``f`` the without-replacement factor. :class:`SGDTheory` gives its exact mean first-passage
time, the quasi-potential slope of ``ln tau`` against ``batch_size/lr`` and the effective
temperature ``T_eff = lr f tr(Sigma) / (2 B N_theta)`` (:func:`phasetools.theory.effective_temperature`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validation import as_float_array, check_choice, check_n_layers
from ..theory import (effective_temperature, eyring_kramers_time, gradient_covariance_from_K, gradient_noise_kernel,
                      kramers_time, landscape, log_first_passage_time, mfpt_1d, noise_strength,
                      resolve_convention)
from ._potentials import Potential, chain, double_well, network, reduced
from ._simulate import SGDNoise, Threshold

__all__ = ["EscapeProblem", "SGDTheory", "escape_problem", "MODELS", "SGD_MODELS"]

MODELS = ("chain", "network", "reduced", "double_well")
SGD_MODELS = ("chain", "network")   # the models with an end-to-end map (SGD-like noise)


@dataclass(frozen=True)
class EscapeProblem:
    """What to simulate and what the theory predicts for it (made by :func:`escape_problem`).

    Parameters
    ----------
    model : {"chain", "network", "reduced", "double_well"}
        The model (see the module docstring).
    direction : {"fwd", "bwd"}
        Forward (trivial -> learned) or backward (learned -> trivial) escape.
    potential : Potential
        The potential to simulate.
    x0 : ndarray (dim,)
        The start.
    stop : Threshold
        The escape condition.
    barrier : float
        The barrier crossed, in the convention's energy units.
    config : dict
        The inputs (``model``, ``n_layers``, ``c``, ``gamma``, ``a``, ``convention``,
        ``direction``, ``width``), recorded with sweeps.
    """

    model: str
    direction: str
    potential: Potential
    x0: np.ndarray
    stop: Threshold
    barrier: float           # in the convention's energy units
    config: dict

    def theory_tau(self, temperature):
        """Predicted mean escape time at ``temperature`` (convention time units).

        Weight-space Eyring-Kramers for ``chain`` and ``network``, the exact 1D mean
        first-passage time to the stop level for ``reduced`` and ``double_well``.

        Parameters
        ----------
        temperature : float > 0
            Temperature of additive noise (convention energy units).

        Returns
        -------
        float or None
            None where the theory has no prediction (e.g. no barrier).
        """
        cfg = self.config
        if self.model in ("chain", "network"):
            out = eyring_kramers_time(cfg["n_layers"], cfg["c"], cfg["gamma"], temperature, cfg["a"],
                                      direction=self.direction, width=cfg.get("width", 1),
                                      convention=cfg["convention"])
            return None if out is None else float(out)
        return self.exact_mfpt(temperature)

    def exact_mfpt(self, temperature):
        """Exact 1D mean first-passage time to the stop level (1D models only).

        Parameters
        ----------
        temperature : float > 0
            As in :meth:`theory_tau`.

        Returns
        -------
        float or None
            None for the models with more than one variable.
        """
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

    # -- SGD-like noise ------------------------------------------------------------------
    def _check_sgd(self):
        if self.model not in SGD_MODELS:
            raise ValueError(f"SGD-like noise needs a model with an end-to-end map: model must be "
                             f"'chain' or 'network', got {self.model!r} (the 1D reduced potential and the "
                             f"double well have no per-sample gradients)")

    def sgd_noise(self, lr, batch_size, *, n_samples=None, output_var=1.0) -> SGDNoise:
        """:class:`SGDNoise` with this mode's data moments ``E[x^2] = a``, ``E[xy] = c``, ``E[y^2] = output_var``.

        Parameters
        ----------
        lr, batch_size, n_samples : float > 0, int >= 1, int or None
            The SGD point, as in :class:`SGDNoise` (``n_samples`` switches on the
            without-replacement factor ``(N - B)/(N - 1)``).
        output_var : float >= c^2/a, default 1
            ``E[y^2]`` (1: the paper's unit output variances).

        Returns
        -------
        SGDNoise
        """
        self._check_sgd()
        a, c = self.config["a"], self.config["c"]
        s = _output_var(output_var, a, c)
        return SGDNoise(lr, batch_size, [[a]], [[c]], [[s]], n_samples)

    def sgd_theory(self, *, output_var=1.0, noise=None) -> "SGDTheory":
        """The 1D reduction of escape under SGD-like noise (see :class:`SGDTheory`).

        Backward escape only: the noise is exactly zero at the trivial state, so there is no
        forward escape rate to predict.

        Parameters
        ----------
        output_var : float >= c^2/a, default 1
            ``E[y^2]`` of the mode (ignored with ``noise``).
        noise : SGDNoise, optional
            The simulated noise of this mode (1 x 1 moments ``a``, ``c`` of the problem, e.g.
            :meth:`SGDNoise.from_mode` or :meth:`SGDNoise.from_data` of the mode's samples): ``K(P)``
            is then its :meth:`SGDNoise.kernel` (with ``moments="data"`` the data's fourth
            moments) and ``output_var`` its ``S_yy``. Default: Isserlis' ``K`` of ``a, c, output_var``.

        Returns
        -------
        SGDTheory
        """
        self._check_sgd()
        if noise is not None:
            output_var = _noise_of_mode(noise, self.config["a"], self.config["c"])
        if self.direction != "bwd":
            raise ValueError("direction must be 'bwd' for SGD-like noise: the noise vanishes at the trivial "
                             "state (the per-sample gradients are all zero there), so pure SGD never leaves it "
                             "and forward escape has no rate; escape backward from the learned state instead")
        cfg = self.config
        s = _output_var(output_var, cfg["a"], cfg["c"])
        conv = resolve_convention(cfg["convention"])
        n = cfg["n_layers"]
        L = landscape(n, cfg["c"], cfg["gamma"], cfg["a"], convention=conv)
        red = reduced(n, cfg["c"], cfg["gamma"], cfg["a"], convention=conv)
        return SGDTheory(n_layers=n, n_params=self.potential.dim, kappa=float(self.potential.kappa),
                         a=cfg["a"], c=abs(cfg["c"]), output_var=s, barrier=self.barrier,
                         b_start=float(L.b_min), b_saddle=float(L.b_saddle),
                         b_target=float(abs(self.stop.level)) ** (1.0 / n), _potential=red, noise=noise)

    def kramers_tau(self, temperature):
        """Kramers' one-dimensional weak-noise escape time (no weight-space orbit factors).

        Parameters
        ----------
        temperature : float > 0
            As in :meth:`theory_tau`.

        Returns
        -------
        float or None
            None where there is no barrier.
        """
        cfg = self.config
        if self.model == "double_well":
            return float(2 * np.pi * np.exp(0.25 / temperature) / np.sqrt(2.0 * 1.0))
        out = kramers_time(cfg["n_layers"], cfg["c"], cfg["gamma"], temperature, cfg["a"],
                           direction=self.direction, convention=cfg["convention"])
        return None if out is None else float(out)


def escape_problem(model="chain", *, n_layers=3, c=1.0, gamma=None, a=1.0, width=1, direction="fwd",
                   convention="canonical") -> EscapeProblem:
    """Build an :class:`EscapeProblem` (see the module docstring for the definitions).

    Parameters
    ----------
    model : {"chain", "network", "reduced", "double_well"}
        The model to simulate.
    n_layers : int >= 2
        Number of weight matrices (a barrier needs ``n_layers >= 3``).
    c : float
        The mode's signal ``E[xy]`` (negative: the learned states have ``P < 0``).
    gamma : float >= 0
        Coupling (the weight decay in ``convention="paper"``); required except for
        ``double_well``, and below the spinodal.
    a : float > 0
        Input variance ``E[x^2]``.
    width : int >= 1
        Hidden width of ``model="network"``.
    direction : {"fwd", "bwd"}
        Forward: from the trivial state to the midpoint of saddle and learned minimum;
        backward: from the learned minimum to half the saddle value.
    convention : {"canonical", "paper"} or Convention
        Energy convention.

    Returns
    -------
    EscapeProblem
    """
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


def _output_var(output_var, a, c):
    s = float(as_float_array(output_var, "output_var"))
    if s < c * c / a:
        raise ValueError(f"output_var must be >= c^2/a = {c * c / a:.6g} (E[y^2] of a joint Gaussian with "
                         f"E[x^2] = {a:g}, E[xy] = {c:g}), got {s:g}")
    return s


def _noise_of_mode(noise, a, c) -> float:
    """``E[y^2]`` of an :class:`SGDNoise` checked against the problem's mode ``a``, ``c``."""
    if not isinstance(noise, SGDNoise):
        raise ValueError(f"noise must be an SGDNoise, got {type(noise).__name__}")
    if noise.cross_cov.shape != (1, 1):
        raise ValueError(f"noise must be of one scalar mode (1 x 1 moments), got cross_cov {noise.cross_cov.shape}")
    a_n, c_n = float(noise.input_cov[0, 0]), float(noise.cross_cov[0, 0])
    if not (np.isclose(a_n, a, rtol=1e-6) and np.isclose(abs(c_n), abs(c), rtol=1e-6)):
        raise ValueError(f"noise has E[x^2] = {a_n:g}, E[xy] = {c_n:g} but the problem a = {a:g}, c = {c:g}")
    return float(noise.output_cov[0, 0])


@dataclass(frozen=True)
class SGDTheory:
    """Backward escape under SGD-like noise, reduced to the balanced magnitude ``b``.

    From a balanced start the noise ``(lr f / B) Sigma`` (rank one along ``grad M``) and the
    drift both point along the ray through the start, so the dynamics is exactly the 1D Ito
    diffusion ``db = -U'(b)/n dt + sqrt(2 eps Dt(b)) dW``, ``eps = lr f / B``
    (:func:`phasetools.theory.noise_strength`), ``Dt(b) = tr Sigma(b) / (2n)
    = 2 kappa^2 K(b^n) b^(2n-2)``, ``K(P) = a (s - 2 P c + P^2 a) + (c - P a)^2``
    (:func:`phasetools.theory.gradient_noise_kernel` of the scalar mode).

    SGD noise has no Boltzmann temperature. The numbers here:

    * ``trace(b)``: ``tr Sigma`` of the per-sample gradients at ``b`` (convention units),
      ``4 kappa^2 K(b^n) n b^(2n-2)``; ``temperature(lr, B, at=...)`` the effective
      temperature ``T_eff = lr f tr(Sigma) / (2 B N_theta)`` there.
    * ``slope_start`` = ``barrier / (T_eff(start) B / lr)`` = ``barrier * C`` with
      ``C = 2 N_theta / tr Sigma`` at the start: the Arrhenius slope if the noise were isotropic
      at the start state's ``T_eff``. ``slope_saddle``: the same with the saddle's trace.
    * ``slope_path``: the quasi-potential ``int_{b_saddle}^{b_start} -U'(b) / (n Dt(b)) db`` =
      ``int |dU| / (N_theta T_eff(b) B / lr)`` along the path, the exact slope of ``ln tau``
      against ``B / (lr f)`` as ``lr/B -> 0`` (the prefactor does not depend on ``lr/B``).
      ``N_theta T_eff`` appears, not ``T_eff``: all the noise acts along the escape direction,
      whereas the isotropic replacement spreads it over ``N_theta`` directions.
    * ``tau(lr, B)``: the exact mean first-passage time of the 1D diffusion from
      ``b_start`` down to ``b_target`` (quadrature), valid at any noise level.

    Made by :meth:`EscapeProblem.sgd_theory`.

    Parameters
    ----------
    n_layers : int
        Number of weight matrices ``n``.
    n_params : int
        ``N_theta`` of the simulated model (chain: ``n``; width-h network: more).
    kappa : float
        Loss scale of the convention (the data term is ``kappa ||y - M x||^2``).
    a, c, output_var : float
        The mode's ``E[x^2]``, ``|E[xy]|`` and ``E[y^2]``.
    barrier : float
        Backward barrier (convention energy units).
    b_start, b_saddle, b_target : float
        Balanced magnitudes of the start (learned minimum), the saddle and the stop level.
    _potential : Potential
        The reduced potential ``U(b)`` (drift and curvatures).
    noise : SGDNoise, optional
        Whose ``K(P)`` (:meth:`SGDNoise.kernel`, e.g. the data's fourth moments) replaces
        Isserlis' formula of ``a, c, output_var`` (:meth:`EscapeProblem.sgd_theory`).
    """

    n_layers: int
    n_params: int
    kappa: float
    a: float
    c: float
    output_var: float
    barrier: float
    b_start: float
    b_saddle: float
    b_target: float
    _potential: object = field(default=None, repr=False, compare=False)   # the reduced U(b)
    noise: object = field(default=None, repr=False, compare=False)   # an SGDNoise whose K(P) is used, or None

    def _sigma_trace(self, b):
        """``tr Sigma`` at the balanced points of magnitudes ``b`` (any shape): ``M = b^n`` and
        ``J = dM/dw = b^(n-1) (1, ..., 1)`` (the other parameters of a wider network do not move M)."""
        n = self.n_layers
        b = np.asarray(b, dtype=float)
        if self.noise is not None:   # its own K (data moments); M carries the sign of its E[xy]
            K = self.noise.kernel(np.sign(self.noise.cross_cov[0, 0] or 1.0) * (b ** n)[..., None, None])
        else:
            K = gradient_noise_kernel((b ** n)[..., None, None], np.array([[self.a]]), np.array([[self.c]]),
                                      np.array([[self.output_var]]))
        J = np.broadcast_to((b ** (n - 1))[..., None, None], b.shape + (1, n))
        return np.trace(gradient_covariance_from_K(J, K, self.kappa), axis1=-2, axis2=-1)

    def _dtilde(self, b):
        """``Dt(b) = tr Sigma(b) / (2n)``: the diffusion coefficient of ``b`` per unit ``eps``."""
        return self._sigma_trace(b) / (2 * self.n_layers)

    def _drift_force(self, b):
        """``U'(b) / n`` (minus the drift)."""
        from ._codegen import numpy_functions

        g = numpy_functions(self._potential).grad(np.asarray(b, dtype=float)[..., None])
        return np.asarray(g[0] if isinstance(g, (list, tuple)) else g, dtype=float) / self.n_layers

    def trace(self, b) -> float:
        """``tr Sigma`` of the per-sample gradients at the balanced point of magnitude ``b``.

        Parameters
        ----------
        b : float
            Balanced magnitude (each weight ``b``).

        Returns
        -------
        float
            ``4 kappa^2 K(b^n) n b^(2n-2)`` (convention units).
        """
        return float(self._sigma_trace(b))

    @property
    def trace_start(self) -> float:
        return self.trace(self.b_start)

    @property
    def trace_saddle(self) -> float:
        return self.trace(self.b_saddle)

    @property
    def slope_start(self) -> float:
        return self.barrier * 2 * self.n_params / self.trace_start

    @property
    def slope_saddle(self) -> float:
        return self.barrier * 2 * self.n_params / self.trace_saddle

    @property
    def slope_path(self) -> float:
        from scipy.integrate import quad

        val, _ = quad(lambda b: -float(self._drift_force(b)) / self._dtilde(b), self.b_saddle, self.b_start,
                      epsabs=0.0, epsrel=1e-10, limit=200)
        return float(val)

    @property
    def prefactor(self) -> float:
        """Weak-noise (Kramers) prefactor ``tau0`` of ``tau ~ tau0 exp(slope_path B / (lr f))``:
        ``2 pi n sqrt(Dt(b_saddle) / Dt(b_start)) / sqrt(U''(b_start) |U''(b_saddle)|)``;
        it does not depend on ``lr/B``, so ``ln tau`` is linear in ``B/(lr f)`` for small noise."""
        from ._codegen import numpy_functions

        hess = numpy_functions(self._potential).hessian
        k_m, k_s = (float(np.asarray(hess(np.array([b])), dtype=float).ravel()[0])
                    for b in (self.b_start, self.b_saddle))
        ratio = self._dtilde(self.b_saddle) / self._dtilde(self.b_start)
        return float(2 * np.pi * self.n_layers * np.sqrt(ratio) / np.sqrt(k_m * abs(k_s)))

    def kramers_tau(self, lr, batch_size, n_samples=None) -> float:
        """The weak-noise asymptote ``prefactor * exp(slope_path / eps)``, ``eps = lr f / B``.

        The exact :meth:`tau` over this tends to 1 with an ``O(eps)`` correction.

        Parameters
        ----------
        lr : float > 0
            Learning rate.
        batch_size : int >= 1
            Batch size.
        n_samples : int or None
            Data-set size for the without-replacement factor ``f``.

        Returns
        -------
        float
            Langevin time (convention units); ``inf`` beyond the float range.
        """
        with np.errstate(over="ignore"):
            return float(self.prefactor * np.exp(self.slope_path / noise_strength(lr, batch_size, n_samples)))

    def temperature(self, lr, batch_size, n_samples=None, *, at="start") -> float:
        """The effective temperature ``T_eff = lr f tr(Sigma) / (2 B N_theta)`` at the start or the saddle.

        Parameters
        ----------
        lr, batch_size, n_samples : float > 0, int >= 1, int or None
            The SGD point, as in :meth:`kramers_tau`.
        at : {"start", "saddle"}
            Where ``tr Sigma`` is taken.

        Returns
        -------
        float
            :func:`phasetools.theory.effective_temperature` (convention energy units).
        """
        check_choice(at, "at", ("start", "saddle"))
        b = self.b_start if at == "start" else self.b_saddle
        return effective_temperature(self.trace(b), self.n_params, lr, batch_size, n_samples)

    def log_tau(self, lr, batch_size, n_samples=None, *, n_grid=40001) -> float:
        """``ln`` of :meth:`tau` (never overflows).

        Parameters
        ----------
        lr, batch_size, n_samples : float > 0, int >= 1, int or None
            The SGD point, as in :meth:`kramers_tau`.
        n_grid : int, default 40001
            Quadrature grid points.

        Returns
        -------
        float
        """
        eps = noise_strength(lr, batch_size, n_samples)
        return log_first_passage_time(self._drift_force, lambda b: eps * self._dtilde(b), self.b_start,
                                      self.b_target, n_grid=n_grid)

    def tau(self, lr, batch_size, n_samples=None) -> float:
        """Exact mean first-passage time (Langevin time, convention units) from the start to the stop.

        Parameters
        ----------
        lr, batch_size, n_samples : float > 0, int >= 1, int or None
            The SGD point, as in :meth:`kramers_tau`.

        Returns
        -------
        float
            ``exp`` of :meth:`log_tau` (``inf`` beyond the float range).
        """
        with np.errstate(over="ignore"):
            return float(np.exp(self.log_tau(lr, batch_size, n_samples)))

