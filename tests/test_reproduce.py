"""`phasetools reproduce` at the smoke scale: every claim in the report, every figure a valid PNG."""

import copy
import dataclasses

import numpy as np
import pytest

from phasetools.cli import main
from phasetools.io import load
from phasetools.reproduce import (CLAIMS, FIGURES, OWN_CHECKS, claim_report, collect, prediction_lines,
                                  prediction_table, side_by_side, tasks)
from phasetools.results import deep_equal
from phasetools.stats import exponential_mle
from phasetools.training import GaussianTeacher
from phasetools.sweep import load_results

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "run"
    code = main(["reproduce", "--smoke", "--out", str(out), "--executor", "inline", "--quiet"])
    assert code == 0
    return out


def test_report_lists_every_claim_and_figure(smoke):
    text = (smoke / "report.md").read_text()
    for claim in CLAIMS + OWN_CHECKS:
        assert f"**{claim.id}**" in text, claim.id
    assert text.index("Headline (N12") < text.index("## The paper's claims") < text.index("## Checks of the theory")
    assert "## Sensitivity to the initialisation reading" in text
    for name in FIGURES:
        path = smoke / name
        assert path.exists(), name
        assert path.read_bytes()[:8] == PNG, name
        assert f"]({name})" in text
    claims = load(smoke / "verdicts.h5", "claims")
    assert set(claims.claim_id) == {c.id for c in CLAIMS + OWN_CHECKS}
    assert sum(claims.counts().values()) == len(CLAIMS)
    # every experiment a claim needs is part of the reproduction (none is "not run")
    assert not [d for d in claims.detail if d.startswith("not run")]
    assert "not run:" not in text


def test_report_defines_its_terms_before_the_tables(smoke):
    text = (smoke / "report.md").read_text()
    terms = text.index("## Terms")
    assert terms < text.index("## The paper's claims")
    for term in ("**top-m state**", "**residual seed**", "E3 the barrier", "C = 2 N_θ / tr Σ"):
        assert text.index(term) > terms, term
        assert text.index(term) < text.index("## The paper's claims"), term


def _results(v):
    """The results of one entry of ``collect``'s mapping (a result, a list of them, or of tuples ending in one)."""
    return [r[-1] if isinstance(r, tuple) else r for r in (v if isinstance(v, list) else [v])]


def _stats(R):
    return {k: [copy.deepcopy(r.stats) for r in _results(v)] for k, v in R.items()}


def test_the_report_changes_no_result(smoke):
    R = collect(tasks("smoke"), load_results(smoke / "results.h5"))
    before = _stats(R)
    claim_report(R)
    side_by_side(R)
    prediction_table(R)
    assert deep_equal(_stats(R), before)
    # derived values (per-temperature escape times, theory) are not written into a result
    assert not {"temperatures", "tau", "theory_tau"} & set(R["langevin_chain"].stats)


def test_existing_output_folder_is_refused_then_resumed(smoke, capsys):
    code = main(["reproduce", "--smoke", "--out", str(smoke), "--executor", "inline", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "--resume" in err and "Traceback" not in err
    code = main(["reproduce", "--smoke", "--out", str(smoke), "--executor", "inline", "--quiet", "--resume"])
    out = capsys.readouterr().out
    assert code == 0 and "report:" in out


def test_resume_with_another_scale_is_refused(smoke, capsys):
    code = main(["reproduce", "--quick", "--out", str(smoke), "--executor", "inline", "--quiet", "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and "phasetools: error:" in err


def test_task_grids():
    for scale in ("smoke", "quick", "full"):
        names = {t["experiment"] for t in tasks(scale)}
        assert {"theory_critical", "e1_up", "e1_down", "e1_draw", "e2_rank1", "e2_rank0", "e4_paper",
                "e4_corrected", "e5", "langevin_chain", "n5_fresh", "n5_fresh_fan_in", "n6_draws", "n12_noise",
                "n12_runs", "e2_rank0_fan_in", "e2_paper_rank1_fan_in", "predict_replacement",
                "predict_injected", "predict_shuffle"} <= names
    with pytest.raises(ValueError, match="scale"):
        tasks("huge")


def test_report_shows_predicted_against_measured_with_the_ablation(smoke):
    text = (smoke / "report.md").read_text()
    section = text[text.index("## Predicted against measured escape times"):text.index("## Figures")]
    assert "](predict_vs_measured.png)" in section
    assert (smoke / "predict_vs_measured.png").read_bytes()[:8] == PNG
    assert "| regime | model | within x2 | median measured/predicted | worst factor | moves the prediction by |" in section
    for regime in ("(a) with replacement", "(b) reshuffling", "(c) injected, upward", "(d) plateau"):
        assert f"| {regime} |" in section, regime
    for model in ("Gaussian moments", "no mode coupling", "isotropic T_eff", "width-1 chain (no entropy)"):
        assert f"| {model} |" in section, model
    # every SGD verdict names the sampler that ran, read from its result
    claims = load(smoke / "verdicts.h5", "claims")
    assert sum(cid in ("N6", "N7") and how.startswith("SGD") for cid, how in zip(claims.claim_id, claims.how)) >= 2
    for cid, how, quantity in zip(claims.claim_id, claims.how, claims.quantity):
        if cid in ("N6", "N7") and how.startswith("SGD"):
            assert "sampling 'shuffle'" in how, (cid, how)
        if cid == "T2" or (cid == "N9" and "R^2" in quantity):
            assert "sampling '" in quantity, (cid, quantity)
        # and every E4 verdict names its escape rule, read from the stored sweep (corrected E4: the rank criterion)
        if cid == "T2" or (cid == "N9" and "R^2" in quantity) or (cid == "F14" and "training" in quantity):
            rule = "rank" if cid != "N9" or "corrected" in quantity else "test_mse"
            assert f"criterion '{rule}'" in quantity, (cid, quantity)
    # every SGD point of the prediction table names the sampler that ran
    for row in section.splitlines():
        if row.startswith(("| (a)", "| (b)", "| (c)")) and "draw" in row:
            assert "sampling " in row, row


def test_prediction_numbers_come_from_the_stored_results(smoke):
    R = collect(tasks("smoke"), load_results(smoke / "results.h5"))
    table = prediction_table(R)
    text = (smoke / "report.md").read_text()
    assert "\n".join(prediction_lines(table)) in text       # the report prints the table of the stored runs
    draw, sw = R["predict_replacement"][0]
    i = list(table.label).index(f"draw {draw}, wd {sw.target_weight_decay:g}, lr {sw.lr[0]:g}, B {sw.batch_size[0]}, "
                                f"sampling replacement")
    fit = exponential_mle(sw.escape_epoch[0].astype(float), ~sw.escaped[0], time_unit="epochs")
    assert table.measured[i] == pytest.approx(fit.tau if fit.tau is not None else np.nan, nan_ok=True)
    # change what was stored: the table follows (nothing is written into the code)
    longer = dataclasses.replace(sw, escape_epoch=sw.escape_epoch * 3, escaped=np.ones_like(sw.escaped))
    R2 = dict(R, predict_replacement=[(draw, longer)])
    t2 = prediction_table(R2)
    assert t2.measured[i] == pytest.approx(float(np.mean(sw.escape_epoch[0] * 3)))
    assert t2.predicted[i, 0] == table.predicted[i, 0]
    assert prediction_table({}) is None
    # (b) is measured by the rank criterion: the escaping mode's singular value below the prediction's target
    draw_b, run = R["predict_shuffle"][0]
    j = [k for k, lab in enumerate(table.label) if lab.startswith(f"draw {draw_b}") and "sampling shuffle" in lab][0]
    from phasetools.training import escape_epochs, predict_escape
    target = predict_escape(GaussianTeacher([0.9, 0.8]).sample(512, rng=draw_b), n_layers=3, width=run.width,
                            weight_decay=run.weight_decay, lr=run.lr, batch_size=run.batch_size).b_target ** 3
    ep, ok = escape_epochs(run.log_epochs, run.singular_values[:, :, 1], target, direction="down")
    fit = exponential_mle(ep.astype(float), ~ok, time_unit="epochs")
    assert table.lower_bound[j] == (fit.tau is None)
    assert (table.measured_low[j] if fit.tau is None else table.measured[j]) == pytest.approx(
        fit.tau_lower if fit.tau is None else fit.tau)


def test_e4_corrected_is_measured_by_the_rank_criterion(monkeypatch):
    import phasetools.training as training
    from phasetools.reproduce._experiments import run_experiment
    seen = {}

    def fake_sweep(data, trap, **kw):
        seen.update(kw)
        return "sweep"
    monkeypatch.setattr(training, "prepare_trap", lambda *a, **k: "trap")
    monkeypatch.setattr(training, "mse_levels", lambda *a, **k: (0.0, 0.3, 0.7))
    monkeypatch.setattr(training, "arrhenius_sweep", fake_sweep)
    p = next(t for t in tasks("smoke") if t["experiment"] == "e4_corrected")
    assert run_experiment(**p, rng=np.random.SeedSequence(0)) == "sweep"
    assert seen["criterion"] == "rank" and seen["levels"] == (0.7, 0.3)     # a rising level: a mode is lost


def test_e4_corrected_points_merge_with_their_rule(smoke):
    from phasetools.reproduce._run import _merge_points
    R = collect(tasks("smoke"), load_results(smoke / "results.h5"))
    sw = R["e4_corrected"]
    assert sw.criterion == "rank" and sw.sv_index == 1 and np.isfinite(sw.sv_threshold)
    assert sw.escape_epoch_mse.shape == sw.escaped_mse.shape == sw.escape_epoch.shape == (2, 2)
    from phasetools.reproduce._e4 import by_test_mse
    assert np.array_equal(by_test_mse(sw).tau_epochs, sw.tau_epochs_of("test_mse"), equal_nan=True)
    single = [dataclasses.replace(sw, **{f: getattr(sw, f)[i:i + 1] for f in (
        "lr", "batch_size", "steps_per_epoch", "temperature", "gradient_trace", "tau_epochs", "tau_epochs_low",
        "tau_epochs_high", "tau_time", "tau_time_low", "tau_time_high", "escape_epoch", "escaped",
        "escape_epoch_mse", "escaped_mse")}) for i in range(2)]
    merged = _merge_points(single)
    assert np.array_equal(merged.escape_epoch_mse, sw.escape_epoch_mse)
    assert np.array_equal(merged.escaped_mse, sw.escaped_mse)
    old = dataclasses.replace(single[1], criterion="test_mse", sv_index=-1, sv_threshold=float("nan"),
                              escape_epoch_mse=None, escaped_mse=None)
    with pytest.raises(ValueError, match="escape rules"):
        _merge_points([single[0], old])
    # an older file's sweep (no criterion stored: "test_mse") is reported by that rule
    R_old = dict(R, e4_corrected=_merge_points([dataclasses.replace(s, criterion="test_mse", sv_index=-1,
                                                                    sv_threshold=float("nan"), escape_epoch_mse=None,
                                                                    escaped_mse=None) for s in single]))
    rows = [r for r in side_by_side(R_old) if r[0].startswith("escape time, lr")]
    assert rows and all("criterion 'test_mse'" in r[0] and "test-MSE rule" not in r[5] for r in rows)
    rows = [r for r in side_by_side(R) if r[0].startswith("escape time, lr")]
    assert rows and all("criterion 'rank'" in r[0] and "by the test-MSE rule of the paper" in r[5] for r in rows)


def test_the_reshuffled_escaping_mode_is_the_checkpoint_rank_minus_one():
    from types import SimpleNamespace

    from phasetools.reproduce._predicted import escaping_mode
    sv = np.zeros((3, 2, 4))
    sv[:, 0, :3] = [0.9, 0.5, 0.2]                 # rank 3 at the checkpoint (first log point)
    sv[:, 1, 2] = 0.0
    assert escaping_mode(SimpleNamespace(singular_values=sv)) == 2
    with pytest.raises(ValueError, match="rank is 0"):
        escaping_mode(SimpleNamespace(singular_values=np.zeros((3, 2, 4))))


def test_an_unreachable_scheduler_leaves_no_folder_behind(tmp_path):
    """The sweep's lock file used to stay behind in a folder that held nothing else."""
    pytest.importorskip("distributed", reason='dask is an optional extra: pip install "phasetools[dask]"')
    from phasetools.reproduce import reproduce
    from phasetools.sweep import SweepError

    out = tmp_path / "new"
    with pytest.raises(SweepError, match="scheduler"):
        reproduce(out, scheduler="tcp://127.0.0.1:1", quiet=True)
    assert not out.exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    with pytest.raises(SweepError, match="scheduler"):
        reproduce(kept, scheduler="tcp://127.0.0.1:1", quiet=True)
    assert kept.is_dir()   # a folder that was there before stays
