"""Mean escape times far beyond brute force, by adaptive multilevel splitting (phasetools.rare).

The double well at dU/T = 10, 20 and 30 and the paper's reduced potential (n_layers = 3, eta = 0.8,
weight decay 0.32, forward) at dU/T = 20, each against the exact 1D mean first-passage time.
Brute force would need about exp(dU/T) relaxation times per escape: 10^13 time units at
dU/T = 30. About a minute and a half on 2 cores.

    python examples/rare_escape.py

It also writes docs/images/rare_levels.png: the survival/level figure of the double well at
dU/T = 20 (phasetools.rare.level_figure).
"""

from phasetools.langevin import escape_problem
from phasetools.rare import AMSOptions, escape_time, level_figure

options = AMSOptions(n_replicas=100, n_kill=5, n_runs=20, n_walkers=50, n_rounds=10)
cases = [(escape_problem("double_well"), r) for r in (10, 20, 30)]
cases.append((escape_problem("reduced", n_layers=3, c=0.8, gamma=0.32, direction="fwd", convention="paper"), 20))
print(f"{'problem':>12} {'dU/T':>5} {'tau (AMS)':>11} {'95% interval':>25} {'exact':>11} {'ratio':>6} {'steps':>9}")
for problem, ratio in cases:
    T = problem.barrier / ratio
    res = escape_time(problem, temperature=T, dt=0.01, options=options, rng=1)
    print(f"{problem.model:>12} {ratio:5g} {res.tau:11.4g} [{res.tau_lower:10.4g}, {res.tau_upper:10.4g}] "
          f"{res.theory_tau:11.4g} {res.tau / res.theory_tau:6.3f} {res.cost['total']:9.3g}")
    if problem.model == "double_well" and ratio == 20:
        level_figure(res, "docs/images/rare_levels.png")
