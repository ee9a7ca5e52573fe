"""Figures: each builder runs headless on real results, draws data, labels its axes, saves PNG/PDF."""

import numpy as np
import pytest
from matplotlib.testing.decorators import _cleanup_cm

import phasetools.plot as P
import phasetools.theory as th


@pytest.fixture(autouse=True)
def _close_figures():
    with _cleanup_cm():
        yield


def _png_ok(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


CASES = {
    "potential": (lambda: th.landscape(3, 1.0, [0.2, 0.35, 0.42, 0.5]), "per-layer weight", "U(b)"),
    "barriers": (lambda: th.landscape(3, 0.8, np.linspace(0.01, 0.4, 80), convention="paper"),
                 "weight decay", "barrier height"),
    "phase": (lambda: th.critical_points(3, np.linspace(0.05, 1.2, 60), convention="paper"),
              "feature strength", "weight decay"),
    "cascade": (lambda: th.phase_diagram(3, [0.9, 0.8], np.linspace(0, 0.5, 201), convention="paper"),
                "weight decay", "state energy"),
    "levels": (lambda: th.modes(3, [0.9, 0.8], gamma=0.32, convention="paper"), "state", "energy"),
    "survival": (lambda: _ensemble(), "time t", "survival"),
    "arrhenius": (lambda: _arrhenius(), "1 / temperature", "ln tau"),
}


def _ensemble():
    from phasetools.langevin import Threshold, double_well, simulate

    return simulate(double_well(), [-1.0], temperature=0.15, dt=0.01, n_traj=300, max_steps=3000,
                    stop=Threshold(1.0), rng=1)


def _arrhenius():
    from phasetools.stats import arrhenius_fit

    T = np.array([0.02, 0.015, 0.01])
    tau = 3.0 * np.exp(0.05 / T)
    return arrhenius_fit(1 / T, tau, tau_stderr=0.03 * tau)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_figure_builders(tmp_path, kind):
    make, xlabel, ylabel = CASES[kind]
    result = make()
    fig = P.KINDS[kind](result)
    axes = fig.axes
    assert any(xlabel in ax.get_xlabel() for ax in axes)
    assert any(ylabel in ax.get_ylabel() for ax in axes)
    assert all(ax.has_data() for ax in axes)
    written = fig.save(tmp_path / kind)
    assert [p.suffix for p in written] == [".png", ".pdf"]
    _png_ok(written[0])
    assert written[1].read_bytes()[:4] == b"%PDF"
    assert P.plot(result).figure is not None  # the default kind for this type draws too


def test_plot_dispatch_errors():
    with pytest.raises(ValueError, match="draws a PhaseDiagram"):
        P.plot(th.modes(3, [1.0], gamma=0.3), "cascade")
    with pytest.raises(ValueError, match="kind must be one of"):
        P.plot(th.modes(3, [1.0], gamma=0.3), "nope")
    with pytest.raises(ValueError, match="1-D array of gamma"):
        P.barriers(th.landscape(3, 1.0, 0.3))
    with pytest.raises(ValueError, match=r"\.png or \.pdf"):
        P.potential(th.landscape(3, 1.0, 0.3)).save("x.jpg")


def test_restyle_before_saving(tmp_path):
    fig = P.potential(th.landscape(3, 1.0, 0.3))
    fig.axes[0].set_title("mine")
    fig.save(tmp_path / "mine.png")
    assert fig.axes[0].get_title() == "mine"
