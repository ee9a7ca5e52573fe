"""Every SGD protocol result states which sampler ran, and the record survives a file round trip."""

import dataclasses
import json

import h5py
import pytest

from phasetools.io import load, save
from phasetools.training import (GaussianTeacher, arrhenius_sweep, mse_levels, prepare_trap, trap_and_release,
                                 weight_decay_sweep)

TEACHER = GaussianTeacher([0.9, 0.8])


@pytest.fixture(scope="module")
def small():
    data = TEACHER.sample(64, rng=3)
    trap = prepare_trap(data, trap_weight_decays=(0.0, 0.3), trap_epochs=(20, 20), n_layers=3, width=3, lr=0.05,
                        batch_size=16, n_seeds=2, rng=1)
    return data, trap


@pytest.mark.parametrize("sampling", ["replacement", "shuffle"])
def test_arrhenius_sweep_records_its_sampler_and_reads_it_back(small, tmp_path, sampling):
    data, trap = small
    lev = mse_levels(data, 0.3, n_layers=3)
    sw = arrhenius_sweep(data, trap, lr=0.05, batch_size=[8, 16], target_weight_decay=0.3, epochs=3,
                         levels=(lev[2], lev[1]), sampling=sampling, rng=2, quiet=True)
    assert sw.sampling == sampling and sw.config["sampling"] == sampling
    assert f"sampling={sampling!r}" in repr(sw)
    save(sw, tmp_path / "e4.h5", name="sw")
    back = load(tmp_path / "e4.h5", "sw")
    assert back.sampling == sampling and back == sw


def test_bad_sampler_is_refused(small):
    data, trap = small
    with pytest.raises(ValueError, match="sampling"):
        arrhenius_sweep(data, trap, lr=0.05, batch_size=8, target_weight_decay=0.3, epochs=2, levels=(1.0, 0.5),
                        sampling="bootstrap", quiet=True)


def test_file_without_the_sampler_loads_as_reshuffling(small, tmp_path):
    """Files written before the sampler was recorded: every E4/E2 release then ran random reshuffling."""
    data, trap = small
    lev = mse_levels(data, 0.3, n_layers=3)
    sw = arrhenius_sweep(data, trap, lr=0.05, batch_size=8, target_weight_decay=0.3, epochs=2,
                         levels=(lev[2], lev[1]), sampling="replacement", rng=2, quiet=True)
    path = tmp_path / "old.h5"
    save(sw, path, name="sw")
    with h5py.File(path, "r+") as f:        # written as a file of before the record would be
        g = f["results"]["sw"]
        types = json.loads(g.attrs["__types__"])
        types.pop("sampling", None)
        g.attrs["__types__"] = json.dumps(types)
        if "sampling" in g.attrs:
            del g.attrs["sampling"]
        if "sampling" in g:
            del g["sampling"]
        from phasetools.io._verify import DIGEST_ATTR, attrs_digest
        if DIGEST_ATTR in g.attrs:
            g.attrs[DIGEST_ATTR] = attrs_digest(g)
    assert load(path, "sw").sampling == "shuffle"


def test_trap_release_records_the_release_sampler(small, tmp_path):
    data, _ = small
    res = trap_and_release(data, target_weight_decay=0.3, trap_weight_decays=(0.0, 0.3), trap_epochs=(10, 10),
                           epochs=4, n_layers=3, width=3, lr=0.05, batch_size=16, n_seeds=2, n_reference=1, rng=4,
                           quiet=True)
    assert res.sampling == "shuffle" and "sampling='shuffle'" in repr(res)
    save(res, tmp_path / "e2.h5", name="e2")
    assert load(tmp_path / "e2.h5", "e2").sampling == "shuffle"
    assert dataclasses.replace(res, sampling="replacement").sampling == "replacement"


def test_weight_decay_sweep_names_its_sampler():
    full = weight_decay_sweep(TEACHER.moments, [0.0, 0.1], n_layers=3, width=3, lr=0.08, max_epochs=50, rng=1,
                              quiet=True)
    assert full.sampling == "moments"
    mini = weight_decay_sweep(TEACHER.sample(64, rng=1), [0.0, 0.1], n_layers=3, width=3, lr=0.05, batch_size=16,
                              epochs_per_step=2, rng=1, quiet=True)
    assert mini.sampling == "shuffle"


def test_cli_arrhenius_states_its_sampler(capsys):
    from phasetools.cli import main
    args = ("train arrhenius --n-samples 64 --width 3 --n-seeds 2 --trap-epochs 10,10 --trap-rank 1 "
            "--target-weight-decay 0.2 --lr 0.05 --batch-size 8 --epochs 3 --seed 1 --escape-to-rank 1 --quiet").split()
    assert main([*args, "--sampling", "replacement", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sampling"] == "replacement"
    assert main(args) == 0
    assert "sampler 'shuffle'" in capsys.readouterr().out
