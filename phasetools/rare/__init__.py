"""Rare events: escape times far beyond brute force, by adaptive multilevel splitting (AMS).

    escape_time(problem, temperature=, dt=, options=AMSOptions(...), rng=) -> AMSEscape
    ams_escape(potential, x0, target=, direction="up"|"down", start=, level=, temperature= | noise=,
               dt=, options=, rng=) -> AMSEscape
    ams_training_escape(data, init, n_layers=, width=, lr=, batch_size=, weight_decay=, target=,
                        direction=, coordinate="sv1" | "sharpness") -> AMSEscape (real SGD; times in epochs)
    SharpnessScore: the two-branch score of backward SGD escapes (down in sv_k or up in the
        mode's sharpness, the catapult route), coordinate="sharpness"
    AMSOptions(n_replicas=100, n_kill=1, n_runs=20, n_walkers=100, n_rounds=10, ...)
    AMSEscape: p (P(B before A | entering Sigma)), tau (mean escape time) with tau_stderr,
        tau_lower, tau_upper (from the spread of independent runs), t_first, t_loop,
        t_reactive, n_iterations, cost (trajectory-steps); level_curve() (P(reach a level));
        reactive() (the reactive trajectories, with AMSOptions(keep_paths=True))
    n_workers= (every ams_* function and escape_time): the runs on a process pool; scheduler= /
        dask_workers=: on a Dask cluster; the same result for any count or cluster
    kick_escape(data, init, n_layers=, width=, lr=, batch_size=, weight_decay=, target=, well=(lo, hi),
                options=KickOptions(...), rng=) -> KickEscape: SGD with replacement beyond brute force, by
        importance sampling the minibatch that kicks the network out of its well (times in epochs)
    level_figure(res, path): the AMS levels over the iterations and P(reach level)
    chain_exact_mfpt(problem, temperature) -> theory.GridMFPT: the exact forward mean escape time
        of the scalar chain (finite volumes, theory.mfpt_grid), the reference of its AMS estimates
    TrainingEngine, excursions: the SGD trainer as a splitting engine, and brute-force
        excursions of any engine between two levels (e.g. brute-force SGD escape times)
    NonlinearEngine, ams_nonlinear_escape(task, model, init, lr=, weight_decay=, target=,
        coordinate="fourier_ipr", sampling="full", temperature=, ...) -> AMSEscape: the
        nonlinear trainer (phasetools.nonlinear.train) as a splitting engine (times in epochs)

It sits on top of ``langevin`` (and may use ``theory``/``stats``), as its own layer: the
splitting algorithm is independent of the engine that moves the replicas (any object with
``advance``/``coordinate``/``streams``, see ``phasetools.rare._engine``: the Langevin engine
through ``langevin.advance``, the SGD trainer through ``training.train(init=...)``), so it
belongs to neither the Langevin engine nor the estimators of ``stats``.
"""

from ._engine import excursions
from ._exact import CHAIN_GRIDS, chain_exact_mfpt
from ._escape import AMSEscape, AMSOptions, ams_escape, ams_training_escape, escape_time
from ._figure import level_figure
from ._kick import KickEscape, KickOptions, kick_escape, tilted_minibatches
from ._nonlinear import NonlinearEngine, ams_nonlinear_escape
from ._training import SharpnessScore, TrainingEngine

__all__ = ["AMSEscape", "AMSOptions", "KickEscape", "KickOptions", "NonlinearEngine", "SharpnessScore", "TrainingEngine",
           "ams_escape", "ams_nonlinear_escape", "ams_training_escape", "escape_time", "excursions", "kick_escape",
           "level_figure", "tilted_minibatches", "CHAIN_GRIDS", "chain_exact_mfpt"]
