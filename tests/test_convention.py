"""Conventions: conversions by round trip, the brief's table 1.4, and cross-convention agreement."""

import numpy as np
import pytest

from phasetools.theory import (CANONICAL, PAPER, Convention, critical_points, eyring_kramers_time,
                               gamma_from_weight_decay, landscape, weight_decay_from_gamma)


def test_brief_table_1_4():
    wd = 0.3
    assert gamma_from_weight_decay(wd, n_outputs=3, reduction="mean_samples") == pytest.approx(wd / 2)
    assert gamma_from_weight_decay(wd, n_outputs=2, reduction="mean") == pytest.approx(wd)      # paper: gamma = beta
    assert gamma_from_weight_decay(wd, n_outputs=5, reduction="mean") == pytest.approx(5 * wd / 2)
    assert gamma_from_weight_decay(wd, n_outputs=3, reduction="mean_samples", half=True) == pytest.approx(wd)
    assert gamma_from_weight_decay(wd, n_outputs=1, reduction="sum", n_samples=512) == pytest.approx(wd / 1024)


def test_round_trips():
    g = np.array([0.0, 0.1, 2.5])
    for conv in (CANONICAL, PAPER, Convention.paper(5), Convention.from_training("sum", n_samples=64, half=True)):
        np.testing.assert_allclose(conv.gamma_to_canonical(conv.gamma_from_canonical(g)), g, rtol=1e-15)
        np.testing.assert_allclose(conv.energy_to_canonical(conv.energy_from_canonical(g)), g, rtol=1e-15)
        np.testing.assert_allclose(conv.temperature_to_canonical(conv.temperature_from_canonical(g)), g,
                                   rtol=1e-15)
        np.testing.assert_allclose(conv.time_to_canonical(conv.time_from_canonical(g)), g, rtol=1e-15)
    wd = np.array([0.01, 0.5])
    np.testing.assert_allclose(weight_decay_from_gamma(gamma_from_weight_decay(wd, 4, "mean"), 4, "mean"), wd)


def test_paper_to_canonical_factors():
    # brief 1.4: paper -> canonical T = 2 T_paper, t = t_paper / 2, dU = 2 dE_paper
    assert PAPER.temperature_to_canonical(0.01) == pytest.approx(0.02)
    assert PAPER.time_to_canonical(100.0) == pytest.approx(50.0)
    assert PAPER.energy_to_canonical(0.02845) == pytest.approx(0.0569)


def test_two_conventions_agree_after_conversion():
    conv = Convention.paper(3)  # p = 3: gamma = 1.5 beta, kappa = 1/3
    beta, eta, T = 0.2, 0.9, 0.004
    Lp = landscape(3, eta, beta, convention=conv)
    Lc = landscape(3, eta, conv.gamma_to_canonical(beta))
    assert Lp.b_saddle == pytest.approx(Lc.b_saddle, rel=1e-14)
    assert Lp.barrier_fwd == pytest.approx(conv.energy_from_canonical(Lc.barrier_fwd), rel=1e-14)
    assert Lp.curvature_min == pytest.approx(conv.energy_from_canonical(Lc.curvature_min), rel=1e-14)
    cpp, cpc = critical_points(3, eta, convention=conv), critical_points(3, eta)
    assert conv.gamma_to_canonical(cpp.gamma_c) == pytest.approx(cpc.gamma_c, rel=1e-14)
    assert cpp.latent_heat == pytest.approx(cpc.latent_heat * conv.kappa * conv.gamma_scale, rel=1e-14)
    tp = eyring_kramers_time(3, eta, beta, T, convention=conv)
    tc = eyring_kramers_time(3, eta, conv.gamma_to_canonical(beta), conv.temperature_to_canonical(T))
    assert conv.time_to_canonical(tp) == pytest.approx(tc, rel=1e-12)


def test_bad_conventions():
    with pytest.raises(ValueError, match="convention"):
        landscape(3, 1.0, 0.1, convention="weird")
    with pytest.raises(ValueError, match="kappa"):
        Convention("x", -1.0)
    with pytest.raises(ValueError, match="reduction"):
        gamma_from_weight_decay(0.1, 2, "median")
    with pytest.raises(ValueError, match="n_samples"):
        gamma_from_weight_decay(0.1, 2, "sum")
    with pytest.raises(ValueError, match="weight_decay"):
        gamma_from_weight_decay(-0.1, 2, "mean")
